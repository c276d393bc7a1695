// lstmctl: a command-line client for lstmserve.
//   lstmctl generate --model shakespeare --prompt "ROMEO:" --max_tokens 200
//   lstmctl score --model shakespeare --text "To be, or not to be"
//   lstmctl embed --model shakespeare --text "hello"
//   lstmctl models | lstmctl health
//   lstmctl generate --model m --prompt "Once" --state-out s.bin   (then --state-in s.bin)
//   lstmctl chat --model shakespeare --max-tokens 200 --stop $'\n\n'
// Flag names may use dashes or underscores (--state-in = --state_in).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, "localhost:50051", "lstmserve address HOST:PORT.");
ABSL_FLAG(absl::Duration, timeout, absl::InfiniteDuration(), "Deadline for the call (e.g. 30s).");
ABSL_FLAG(std::string, request_id, "", "generate/score/embed: sent as x-request-id; the "
          "server echoes it and writes it to its request log (empty = the server picks one).");
ABSL_FLAG(std::string, model, "", "Model name (see `lstmctl models`).");
ABSL_FLAG(std::string, prompt, "", "generate: the text to continue.");
ABSL_FLAG(std::string, text, "", "score/embed: the text.");
ABSL_FLAG(std::string, context, "", "score: text that conditions without being scored.");
ABSL_FLAG(int, max_tokens, 200, "generate: tokens to generate at most.");
ABSL_FLAG(double, temperature, 1.0, "generate: sampling temperature; 0 = greedy.");
ABSL_FLAG(int, top_k, 0, "generate: keep the k most likely tokens (0 = off).");
ABSL_FLAG(double, top_p, 1.0, "generate: nucleus mass in (0, 1] (1 = off).");
ABSL_FLAG(int64_t, seed, -1, "generate: random seed (-1 = server's choice).");
ABSL_FLAG(std::vector<std::string>, stop, {}, "generate: stop strings (comma-separated).");
ABSL_FLAG(bool, usage, true, "generate: print finish reason and usage to stderr at the end.");
ABSL_FLAG(std::string, state_in, "", "generate/score/embed/chat: continue from the state in this "
          "file (written by --state-out). With a state, generate's --prompt may be empty.");
ABSL_FLAG(std::string, state_out, "", "generate/score/embed/chat: ask for the state after the "
          "request (return_state) and write it to this file.");
ABSL_FLAG(std::string, turn_prefix, "", "chat: text sent before each line you type.");
ABSL_FLAG(std::string, turn_suffix, "\n", "chat: text sent after each line you type.");
ABSL_FLAG(std::string, service, "", "health: service name (empty = the whole server; "
          "lstmserve.v1.Liveness = liveness).");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA of the server's certificate: connect with TLS.");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM client key (mutual TLS).");
ABSL_FLAG(std::string, tls_server_name, "", "Name to check in the server certificate when it "
          "differs from the --server host.");
ABSL_FLAG(std::string, auth_token_file, "", "File whose first non-comment line is the bearer "
          "token to send (also: environment variable LSTMSERVE_TOKEN).");

namespace lstmserve {
namespace {

double Seconds(const google::protobuf::Duration& d) { return d.seconds() + d.nanos() * 1e-9; }

int Fail(const absl::Status& status) {
  std::cerr << "lstmctl: " << status << "\n";
  return 1;
}

absl::StatusOr<std::string> ReadStateIn() {
  const std::string path = absl::GetFlag(FLAGS_state_in);
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("--state-in: cannot read '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return absl::InvalidArgumentError("--state-in: '" + path + "' is empty");
  return bytes;
}

absl::Status WriteStateOut(const std::string& state) {
  const std::string path = absl::GetFlag(FLAGS_state_out);
  if (path.empty()) return absl::OkStatus();
  if (state.empty()) return absl::InternalError("the server returned no state");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(state.data(), static_cast<std::streamsize>(state.size()));
  out.close();
  if (!out) return absl::InternalError("--state-out: cannot write '" + path + "'");
  return absl::OkStatus();
}

v1::GenerateRequest GenerateRequestFromFlags(const std::string& prompt) {
  v1::GenerateRequest r;
  r.set_model(absl::GetFlag(FLAGS_model));
  r.set_prompt(prompt);
  r.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  r.set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  r.set_top_k(absl::GetFlag(FLAGS_top_k));
  r.set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  if (absl::GetFlag(FLAGS_seed) >= 0) r.set_seed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));
  for (const std::string& s : absl::GetFlag(FLAGS_stop)) r.add_stop(s);
  return r;
}

void PrintUsage(const v1::GenerateResponse& last) {
  const v1::Usage& u = last.usage();
  std::cerr << "[" << v1::FinishReason_Name(last.finish_reason()) << "; prompt "
            << u.prompt_tokens() << " tokens, generated " << u.generated_tokens()
            << "; first token " << Seconds(u.time_to_first_token()) * 1e3 << " ms, total "
            << Seconds(u.total_time()) * 1e3 << " ms; seed " << last.seed() << "]\n";
}

int Generate(LanguageModelClient& client, const CallOptions& call) {
  v1::GenerateRequest r = GenerateRequestFromFlags(absl::GetFlag(FLAGS_prompt));
  auto state = ReadStateIn();
  if (!state.ok()) return Fail(state.status());
  r.set_state(*state);
  r.set_return_state(!absl::GetFlag(FLAGS_state_out).empty());
  v1::GenerateResponse last;
  absl::Status status = client.Generate(
      r,
      [&](const v1::GenerateResponse& m) {
        std::cout << m.text() << std::flush;
        last = m;
        return true;
      },
      call);
  std::cout << "\n";
  if (!status.ok()) return Fail(status);
  if (absl::GetFlag(FLAGS_usage)) PrintUsage(last);
  if (absl::Status w = WriteStateOut(last.state()); !w.ok()) return Fail(w);
  return 0;
}

// chat: one line of stdin per turn; the state stays here, between turns, and
// each request carries only the new turn (so any replica can answer it).
int Chat(LanguageModelClient& client, const CallOptions& call) {
  auto state = ReadStateIn();
  if (!state.ok()) return Fail(state.status());
  std::string held = *state;
  std::string line;
  std::cerr << "lstmctl chat: one line per turn; end with EOF (Ctrl-D)\n";
  while (std::getline(std::cin, line)) {
    v1::GenerateRequest r = GenerateRequestFromFlags(absl::GetFlag(FLAGS_turn_prefix) + line +
                                                     absl::GetFlag(FLAGS_turn_suffix));
    r.set_state(held);
    r.set_return_state(true);
    v1::GenerateResponse last;
    absl::Status status = client.Generate(
        r,
        [&](const v1::GenerateResponse& m) {
          std::cout << m.text() << std::flush;
          last = m;
          return true;
        },
        call);
    std::cout << "\n";
    if (!status.ok()) return Fail(status);
    if (absl::GetFlag(FLAGS_usage)) PrintUsage(last);
    if (last.state().empty()) return Fail(absl::InternalError("the server returned no state"));
    held = last.state();
  }
  if (absl::Status w = WriteStateOut(held); !w.ok()) return Fail(w);
  return 0;
}

absl::StatusOr<std::string> AuthToken() {
  const std::string path = absl::GetFlag(FLAGS_auth_token_file);
  if (path.empty()) {
    const char* env = std::getenv("LSTMSERVE_TOKEN");
    return env == nullptr ? "" : env;
  }
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError("--auth-token-file: cannot read '" + path + "'");
  std::string line;
  while (std::getline(in, line)) {
    line = std::string(absl::StripAsciiWhitespace(line));
    if (!line.empty() && line[0] != '#') return line;
  }
  return absl::InvalidArgumentError("--auth-token-file: '" + path + "' holds no token");
}

int Run(const std::string& command) {
  ConnectionOptions connection;
  connection.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  connection.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  connection.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  connection.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  auto token = AuthToken();
  if (!token.ok()) return Fail(token.status());
  connection.auth_token = *token;
  auto connected = LanguageModelClient::Connect(absl::GetFlag(FLAGS_server), connection);
  if (!connected.ok()) return Fail(connected.status());
  LanguageModelClient& client = **connected;
  CallOptions call;
  call.timeout = absl::GetFlag(FLAGS_timeout);
  call.request_id = absl::GetFlag(FLAGS_request_id);
  if (command == "generate") return Generate(client, call);
  if (command == "chat") return Chat(client, call);
  auto state = ReadStateIn();
  if (!state.ok()) return Fail(state.status());
  const bool return_state = !absl::GetFlag(FLAGS_state_out).empty();
  if (command == "score") {
    v1::ScoreRequest r;
    r.set_model(absl::GetFlag(FLAGS_model));
    r.set_text(absl::GetFlag(FLAGS_text));
    r.set_context(absl::GetFlag(FLAGS_context));
    r.set_state(*state);
    r.set_return_state(return_state);
    auto s = client.Score(r, call);
    if (!s.ok()) return Fail(s.status());
    if (absl::Status w = WriteStateOut(s->state()); !w.ok()) return Fail(w);
    std::cout << "total_logprob " << s->total_logprob() << " over " << s->scored_tokens()
              << " tokens\ntoken_logprobs " << absl::StrJoin(s->token_logprobs(), " ") << "\n";
    return 0;
  }
  if (command == "embed") {
    v1::EmbedRequest r;
    r.set_model(absl::GetFlag(FLAGS_model));
    r.set_text(absl::GetFlag(FLAGS_text));
    r.set_state(*state);
    r.set_return_state(return_state);
    auto e = client.Embed(r, call);
    if (!e.ok()) return Fail(e.status());
    if (absl::Status w = WriteStateOut(e->state()); !w.ok()) return Fail(w);
    std::cout << absl::StrJoin(e->embedding(), " ") << "\n";
    return 0;
  }
  if (command == "models") {
    auto m = client.ListModels(call);
    if (!m.ok()) return Fail(m.status());
    for (const v1::ModelInfo& i : m->models()) {
      std::cout << i.name() << ": " << i.num_layers() << " layers x " << i.hidden_size()
                << " hidden, embedding " << i.embedding_dim() << ", vocabulary "
                << i.vocab_size() << " (" << i.tokenizer() << "), " << i.parameter_count()
                << " parameters, " << i.precision() << " on " << i.engine() << ", max batch "
                << i.max_batch() << "\n";
    }
    return 0;
  }
  if (command == "health") {
    auto h = client.Health(absl::GetFlag(FLAGS_service), call);
    if (!h.ok()) return Fail(h.status());
    std::cout << *h << "\n";
    return *h == "SERVING" ? 0 : 3;
  }
  std::cerr << "lstmctl: unknown command '" << command
            << "' (generate, chat, score, embed, models, health)\n";
  return 2;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Client for lstmserve.\n  lstmctl <generate|chat|score|embed|models|health> [flags]");
  // Flag names may be written with dashes: --state-in = --state_in.
  std::vector<std::string> normalized(argv, argv + argc);
  std::vector<char*> pointers;
  for (std::string& a : normalized) {
    if (a.rfind("--", 0) == 0) {
      const size_t eq = a.find('=');
      std::string name = a.substr(0, eq);
      a = "--" + absl::StrReplaceAll(name.substr(2), {{"-", "_"}}) +
          (eq == std::string::npos ? "" : a.substr(eq));
    }
    pointers.push_back(a.data());
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, pointers.data());
  if (args.size() != 2) {
    std::cerr << "usage: lstmctl <generate|chat|score|embed|models|health> [flags] (--help)\n";
    return 2;
  }
  return lstmserve::Run(args[1]);
}
