// lstmserve: the gRPC inference server. The composition root: flags ->
// typed options, engines, server; then waits for SIGTERM/SIGINT and shuts
// down gracefully (exit code 0).
//   lstmserve --model shakespeare=models/shakespeare --listen 0.0.0.0:50051
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC listen address HOST:PORT (port 0: any).");
ABSL_FLAG(std::vector<std::string>, model, {},
          "Model to serve as NAME=DIR (a model package directory). Repeat the flag or "
          "separate with commas to serve several models.");
ABSL_FLAG(std::string, metrics_listen, "", "Serve Prometheus metrics at http://HOST:PORT/metrics "
          "(e.g. 0.0.0.0:9464; port 0: any free port, printed at start-up). Empty: no metrics.");
ABSL_FLAG(bool, metrics, true, "Record metrics. --metrics=false records nothing and serves no "
          "/metrics even with --metrics-listen (to measure what recording costs).");
ABSL_FLAG(std::string, request_log, "stderr", "Where to write one JSON line per finished "
          "request: stderr (or -), a file path (appended), or none.");
ABSL_FLAG(std::string, log_level, "info", "Request log level: debug, info (every request), "
          "warning (only failed requests), error (only server-side failures).");
ABSL_FLAG(std::string, engine, "onednn", "Inference engine: onednn or reference. If it cannot "
          "be created the server exits with the error (no silent fallback).");
ABSL_FLAG(std::string, precision, "f32", "Engine precision: f32, bf16 or int8 (onednn only).");
ABSL_FLAG(int, threads, 0, "Compute threads per engine; 0 = all cores.");
ABSL_FLAG(int, max_batch, 64, "Most sequences one model advances per step (active streams).");
ABSL_FLAG(int, max_queue, 256, "Most requests waiting per model; beyond: RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_pending_tokens, 256, "Tokens a stream may have unsent before its sequence "
          "pauses until the client reads (slow-reader backpressure).");
ABSL_FLAG(int, max_prompt_tokens, 4096, "Longest prompt (Score/Embed: context + text).");
ABSL_FLAG(int, max_tokens_limit, 4096, "Largest GenerateRequest.max_tokens.");
ABSL_FLAG(int, max_stop_strings, 8, "Most stop strings per request.");
ABSL_FLAG(int, max_stop_length, 64, "Longest stop string in bytes.");
ABSL_FLAG(absl::Duration, default_deadline, absl::Minutes(10), "Deadline of a Generate call "
          "whose client set none (inf: none).");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30), "On SIGTERM/SIGINT: readiness "
          "NOT_SERVING and new requests UNAVAILABLE at once; in-flight requests may run this "
          "long before they are ended; then exit 0. Keep below Kubernetes' "
          "terminationGracePeriodSeconds minus the preStop sleep.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::ZeroDuration(),
          "Deprecated alias of --drain-timeout (used when set).");
ABSL_FLAG(absl::Duration, liveness_stall_timeout, absl::Seconds(30), "Health service "
          "lstmserve.v1.Liveness turns NOT_SERVING when a model's scheduling loop made no "
          "progress for this long (a wedged engine step).");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(), "Send GOAWAY to a "
          "connection after this long so clients reconnect and rebalance across replicas "
          "(0 or inf: never). Behind a load balancer e.g. 30s.");
ABSL_FLAG(absl::Duration, max_connection_age_grace, absl::InfiniteDuration(), "Streams on a "
          "connection past --max-connection-age may finish for this long (inf: always finish).");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Minutes(1), "Ping a quiet connection after "
          "this long to detect dead peers.");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(20), "Close the connection when a "
          "keepalive ping gets no answer within this long.");
ABSL_FLAG(absl::Duration, min_client_ping_interval, absl::Seconds(10), "Clients may send "
          "keepalive pings this often (more often: GOAWAY too_many_pings).");
ABSL_FLAG(int, max_concurrent_streams, 0, "Concurrent streams per connection (0: gRPC's "
          "default). Total concurrency is bounded by --max-batch + --max-queue per model.");
ABSL_FLAG(int, max_message_bytes, 1 << 20, "Largest request message in bytes; larger ones "
          "get RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS (with --tls-key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA: require client certificates it signed "
          "(mutual TLS; needs --tls-cert/--tls-key).");
ABSL_FLAG(std::string, auth_token_file, "", "File with bearer tokens, one per line: "
          "LanguageModelService calls need 'authorization: Bearer <token>' (UNAUTHENTICATED "
          "otherwise). Health and reflection stay open for probes. Use with TLS.");

namespace lstmserve {
namespace {

// Prepares argv for absl: flag names may be written with dashes
// (--max-queue) or underscores (--max_queue); and since absl keeps only the
// last value of a repeated flag, every --model occurrence is joined into one
// comma-separated value. `storage` owns the rewritten arguments.
std::vector<char*> NormalizeArgs(int argc, char** argv, std::vector<std::string>* storage) {
  std::vector<char*> out;
  std::vector<std::string> models;
  storage->reserve(argc + 1);
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && arg.rfind("--", 0) == 0) {
      for (size_t k = 2; k < arg.size() && arg[k] != '='; ++k) {
        if (arg[k] == '-') arg[k] = '_';
      }
    }
    if (arg == "--model" && i + 1 < argc) {
      models.push_back(argv[++i]);
    } else if (arg.rfind("--model=", 0) == 0) {
      models.push_back(arg.substr(8));
    } else {
      storage->push_back(arg);
      out.push_back(storage->back().data());
    }
  }
  if (!models.empty()) {
    storage->push_back("--model=" + absl::StrJoin(models, ","));
    out.push_back(storage->back().data());
  }
  return out;
}

int Fail(const absl::Status& status, int code) {
  std::cerr << "lstmserve: " << status << "\n";
  return code;
}

int Run() {
  ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.telemetry.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.telemetry.metrics = absl::GetFlag(FLAGS_metrics);
  options.telemetry.request_log = absl::GetFlag(FLAGS_request_log);
  if (options.telemetry.request_log == "none") options.telemetry.request_log.clear();
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &options.telemetry.log_level)) {
    return Fail(absl::InvalidArgumentError("--log-level must be debug, info, warning or error"),
                2);
  }
  options.shutdown_grace = absl::GetFlag(FLAGS_drain_timeout);
  if (absl::GetFlag(FLAGS_shutdown_grace) != absl::ZeroDuration()) {
    options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  }
  options.liveness_stall_timeout = absl::GetFlag(FLAGS_liveness_stall_timeout);
  options.limits.default_deadline = absl::GetFlag(FLAGS_default_deadline);
  NetworkOptions& net = options.network;
  net.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  if (net.max_connection_age == absl::ZeroDuration()) {
    net.max_connection_age = absl::InfiniteDuration();
  }
  net.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);
  net.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  net.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  net.min_client_ping_interval = absl::GetFlag(FLAGS_min_client_ping_interval);
  net.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  net.max_receive_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.security.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.security.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.security.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.security.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.scheduler.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.scheduler.max_queue = absl::GetFlag(FLAGS_max_queue);
  options.scheduler.max_pending_tokens = absl::GetFlag(FLAGS_max_pending_tokens);
  options.limits.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  options.limits.max_tokens_limit = absl::GetFlag(FLAGS_max_tokens_limit);
  options.limits.max_stop_strings = absl::GetFlag(FLAGS_max_stop_strings);
  options.limits.max_stop_length = absl::GetFlag(FLAGS_max_stop_length);

  EngineOptions engine_options;
  engine_options.threads = absl::GetFlag(FLAGS_threads);
  engine_options.max_batch = options.scheduler.max_batch;
  EngineKind kind;
  if (!ParseEngineKind(absl::GetFlag(FLAGS_engine), &kind)) {
    return Fail(absl::InvalidArgumentError("--engine must be onednn or reference"), 2);
  }
  if (!ParsePrecision(absl::GetFlag(FLAGS_precision), &engine_options.precision)) {
    return Fail(absl::InvalidArgumentError("--precision must be f32, bf16 or int8"), 2);
  }
  std::vector<ModelSpec> specs;
  for (const std::string& flag : absl::GetFlag(FLAGS_model)) {
    auto spec = ParseModelSpec(flag);
    if (!spec.ok()) return Fail(spec.status(), 2);
    specs.push_back(*spec);
  }

  // Block the shutdown signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto engines = LoadEngines(specs, kind, engine_options);
  if (!engines.ok()) return Fail(engines.status(), 1);
  auto server = LanguageModelServer::Start(options, *std::move(engines));
  if (!server.ok()) return Fail(server.status(), 1);
  std::cerr << "lstmserve: serving " << specs.size() << " model(s) on port " << (*server)->port()
            << " with the " << EngineKindName(kind) << " engine";
  if ((*server)->metrics_port() != 0) {
    std::cerr << "; metrics on port " << (*server)->metrics_port();
  }
  std::cerr << "\n";

  int signal = 0;
  sigwait(&signals, &signal);
  std::cerr << "lstmserve: signal " << signal << ": draining (grace "
            << absl::FormatDuration(options.shutdown_grace) << ")\n";
  (*server)->Shutdown();
  std::cerr << "lstmserve: stopped\n";
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves stacked-LSTM language models over gRPC (lstmserve.v1.LanguageModelService).\n"
      "  lstmserve --model NAME=DIR [--model NAME2=DIR2] [--listen HOST:PORT] [--engine ...]\n"
      "Flag names may use dashes or underscores (--max-queue = --max_queue).");
  std::vector<std::string> storage;
  std::vector<char*> args = lstmserve::NormalizeArgs(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return lstmserve::Run();
}
