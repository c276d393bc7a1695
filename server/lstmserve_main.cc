// lstmserve: the gRPC inference server. The composition root: flags ->
// typed options (server/flags.h), engines, server; then waits for signals:
// SIGHUP rescans the model repository, SIGTERM/SIGINT drain (exit code 0).
//   lstmserve --model shakespeare=models/shakespeare --listen 0.0.0.0:50051
//   lstmserve --model-repository /models    (DIR/NAME/VERSION/; kill -HUP to rescan)
#include <pthread.h>

#include <csignal>
#include <iostream>

#include "absl/flags/usage.h"
#include "server/flags.h"
#include "server/openmp_env.h"
#include "server/server.h"

namespace lstmserve {
namespace {

int Fail(const absl::Status& status, int code) {
  std::cerr << "lstmserve: " << status << "\n";
  return code;
}

int Run(const ServerConfig& config) {
  // Block the signals in every thread (before any starts); this one waits
  // for them. A SIGHUP during start-up waits too, and then rescans.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const ModelLoadOptions& loading = config.server.loading;
  auto engines = LoadEngines(config.models, loading.kind, loading.engine);
  if (!engines.ok()) return Fail(engines.status(), 1);
  auto server = LanguageModelServer::Start(config.server, *std::move(engines));
  if (!server.ok()) return Fail(server.status(), 1);
  std::cerr << "lstmserve: serving " << (*server)->registry()->List().size()
            << " model(s) on port " << (*server)->port() << " with the "
            << EngineKindName(loading.kind) << " engine";
  if ((*server)->http_port() != 0) std::cerr << "; HTTP on port " << (*server)->http_port();
  if ((*server)->metrics_port() != 0) {
    std::cerr << "; metrics on port " << (*server)->metrics_port();
  }
  std::cerr << "\n";
  const StateKeyRing& keys = (*server)->state_keys();
  if (keys.random()) {
    std::cerr << "lstmserve: portable states are signed with a random per-process key (id "
              << keys.signing_key_id()
              << "; no --state-key-file): they continue only on this process\n";
  } else {
    std::cerr << "lstmserve: portable states are signed with key " << keys.signing_key_id()
              << " of " << config.server.state_key_file << " (" << keys.size()
              << " key(s) verify)\n";
  }

  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    std::cerr << "lstmserve: SIGHUP: rescanning the model repository\n";
    (*server)->RequestRescan();
  }
  std::cerr << "lstmserve: signal " << signal << ": draining (timeout "
            << absl::FormatDuration(config.server.shutdown_grace) << ")\n";
  (*server)->Shutdown();
  std::cerr << "lstmserve: stopped\n";
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  // First: may run the program again (same pid) with passive OpenMP waits.
  lstmserve::PassiveOpenMpWaits(argv);
  absl::SetProgramUsageMessage(
      "Serves stacked-LSTM language models over gRPC (lstmserve.v1.LanguageModelService).\n"
      "  lstmserve --model NAME=DIR [--model NAME2=DIR2] [--listen HOST:PORT] [--engine ...]\n"
      "  lstmserve --model-repository DIR [--repository-poll-interval 10s] [--keep-versions 1]\n"
      "Flag names may use dashes or underscores (--max-queue = --max_queue).");
  auto config = lstmserve::ParseServerFlags(argc, argv);
  if (!config.ok()) return lstmserve::Fail(config.status(), 2);
  return lstmserve::Run(*config);
}
