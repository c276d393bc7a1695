#include "server/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/log_level.h"
#include "server/options.h"

namespace {
// The defaults of every flag come from the options structs (one place).
const lstmserve::ServerOptions kServer;
const lstmserve::ModelLoadOptions kLoading;
}  // namespace

ABSL_FLAG(std::string, listen, kServer.listen, "gRPC listen address HOST:PORT (port 0: any).");
ABSL_FLAG(std::vector<std::string>, model, {},
          "Model to serve as NAME=DIR (a model package directory), as version 1, never "
          "reloaded. Repeat the flag or separate with commas to serve several models.");
ABSL_FLAG(std::string, model_repository, kServer.repository.directory,
          "Versioned model repository DIR: DIR/NAME/VERSION/ holds a model package (VERSION a "
          "positive integer); each model's highest valid version serves. Rescanned on SIGHUP "
          "and every --repository-poll-interval: a new version is loaded and warmed up, then "
          "swapped in while running requests finish on the old one. Publish a version "
          "atomically: write it elsewhere in the same file system, then rename it into place.");
ABSL_FLAG(absl::Duration, repository_poll_interval, kServer.repository.poll_interval,
          "Rescan --model-repository this often (0: only on SIGHUP).");
ABSL_FLAG(int, keep_versions, kServer.repository.keep_versions,
          "Keep the N newest versions of each repository model loaded and pinnable "
          "(model_version in requests); one more may be resident while an old version "
          "finishes its requests.");
ABSL_FLAG(std::string, metrics_listen, "", "Serve Prometheus metrics at http://HOST:PORT/metrics "
          "(e.g. 0.0.0.0:9464; port 0: any free port, printed at start-up). Empty: no metrics.");
ABSL_FLAG(bool, metrics, kServer.telemetry.metrics, "Record metrics. --metrics=false records nothing and serves no "
          "/metrics even with --metrics-listen (to measure what recording costs).");
ABSL_FLAG(std::string, request_log, "stderr", "Where to write one JSON line per finished "
          "request: stderr (or -), a file path (appended), or none.");
ABSL_FLAG(std::string, log_level, "info", "Request log level: debug, info (every request), "
          "warning (only failed requests), error (only server-side failures).");
ABSL_FLAG(std::string, engine, lstmserve::EngineKindName(kLoading.kind), "Inference engine: onednn or reference. If it cannot "
          "be created the server exits with the error (no silent fallback).");
ABSL_FLAG(std::string, precision, lstmserve::PrecisionName(kLoading.engine.precision), "Engine precision: f32, bf16 or int8 (onednn only).");
ABSL_FLAG(int, threads, kLoading.engine.threads, "Compute threads per engine; 0 = all cores (with several models: "
          "cores / models each).");
ABSL_FLAG(int, max_batch, kServer.scheduler.max_batch, "Most sequences one model advances per step (active streams).");
ABSL_FLAG(int, max_queue, kServer.scheduler.max_queue, "Most requests waiting per model; beyond: RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_pending_tokens, kServer.scheduler.max_pending_tokens, "Tokens a stream may have unsent before its sequence "
          "pauses until the client reads (slow-reader backpressure).");
ABSL_FLAG(int, step_join_max_prompt, kServer.scheduler.step_join_max_prompt, "While --step-join-min-active or more streams are "
          "generating, a prompt of at most this many tokens joins the batch through its steps "
          "(one token per step, no stall for the others) instead of a prefill; 0 = always prefill.");
ABSL_FLAG(int, step_join_min_active, kServer.scheduler.step_join_min_active, "Active streams from which short prompts join through "
          "steps (see --step-join-max-prompt); below it prompts are prefilled.");
ABSL_FLAG(int, prefill_chunk_tokens, kServer.scheduler.prefill_chunk_tokens,
          "Chunked prefill: a long prompt (Generate, Score, Embed) is fed at most this many "
          "tokens between two steps of the running streams, so it delays their next token by "
          "one chunk, not the whole prompt; 0 = whole prompts at once.");
ABSL_FLAG(int64_t, prefix_cache_bytes, kServer.scheduler.prefix_cache_bytes,
          "Per model: most bytes of LSTM states kept to start later requests from the longest "
          "cached prefix of their text (prompts, Score and Embed inputs); 0 = off.");
ABSL_FLAG(int, prefix_cache_interval, kServer.scheduler.prefix_cache_interval,
          "Tokens between the states the prefix cache stores along each text (and where "
          "prefill chunks end, cache on or off).");
ABSL_FLAG(std::string, state_key_file, kServer.state_key_file, "File of hex HMAC-SHA256 keys for portable states "
          "(return_state / state), one per line: the first signs, all verify (rotation). Give "
          "every replica the same file so any replica continues any client's state. Empty: "
          "a random per-process key (states work only within this process).");
ABSL_FLAG(int, max_prompt_tokens, kServer.limits.max_prompt_tokens, "Longest prompt (Score/Embed: context + text).");
ABSL_FLAG(int, max_tokens_limit, kServer.limits.max_tokens_limit, "Largest GenerateRequest.max_tokens.");
ABSL_FLAG(int, max_stop_strings, kServer.limits.max_stop_strings, "Most stop strings per request.");
ABSL_FLAG(int, max_stop_length, kServer.limits.max_stop_length, "Longest stop string in bytes.");
ABSL_FLAG(int, stream_interval, kServer.limits.stream_interval, "Generate streams: tokens per "
          "message after the first (which is always sent at once) for requests that do not set "
          "stream_interval. 1 = every token as it is sampled; more saves the server and the "
          "client a message (write, read, wake-up) per token at the price of up to interval - 1 "
          "steps of latency per token.");
ABSL_FLAG(absl::Duration, default_deadline, kServer.limits.default_deadline, "Deadline of a call "
          "(Generate, Score, Embed; HTTP requests too) whose client set none (inf: none).");
ABSL_FLAG(absl::Duration, drain_timeout, kServer.shutdown_grace, "On SIGTERM/SIGINT: readiness "
          "NOT_SERVING and new requests UNAVAILABLE at once; in-flight requests may run this "
          "long before they are ended; then exit 0. Keep below Kubernetes' "
          "terminationGracePeriodSeconds minus the preStop sleep.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::ZeroDuration(),
          "Deprecated alias of --drain-timeout (used when set).");
ABSL_FLAG(absl::Duration, liveness_stall_timeout, kServer.liveness_stall_timeout, "Health service "
          "lstmserve.v1.Liveness turns NOT_SERVING when a model's scheduling loop made no "
          "progress for this long (a wedged engine step).");
ABSL_FLAG(absl::Duration, max_connection_age, absl::ZeroDuration(), "Send GOAWAY to a "
          "connection after this long so clients reconnect and rebalance across replicas "
          "(0 or inf: never). Behind a load balancer e.g. 30s.");
ABSL_FLAG(absl::Duration, max_connection_age_grace, kServer.network.max_connection_age_grace, "Streams on a "
          "connection past --max-connection-age may finish for this long (inf: always finish).");
ABSL_FLAG(absl::Duration, keepalive_time, kServer.network.keepalive_time, "Ping a quiet connection after "
          "this long to detect dead peers.");
ABSL_FLAG(absl::Duration, keepalive_timeout, kServer.network.keepalive_timeout, "Close the connection when a "
          "keepalive ping gets no answer within this long.");
ABSL_FLAG(absl::Duration, min_client_ping_interval, kServer.network.min_client_ping_interval, "Clients may send "
          "keepalive pings this often (more often: GOAWAY too_many_pings).");
ABSL_FLAG(int, max_concurrent_streams, kServer.network.max_concurrent_streams, "Concurrent streams per connection (0: gRPC's "
          "default). Total concurrency is bounded by --max-batch + --max-queue per model.");
ABSL_FLAG(int, max_message_bytes, kServer.network.max_receive_message_bytes, "Largest request message in bytes; larger ones "
          "get RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS (with --tls-key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA: require client certificates it signed "
          "(mutual TLS; needs --tls-cert/--tls-key).");
ABSL_FLAG(std::string, auth_token_file, "", "File with bearer tokens, one per line: "
          "LanguageModelService calls need 'authorization: Bearer <token>' (UNAUTHENTICATED "
          "otherwise). Health and reflection stay open for probes. Use with TLS.");

ABSL_FLAG(std::string, http_listen, "", "Also serve the HTTP/JSON API (OpenAI-style "
          "/v1/completions with SSE streaming, /v1/embeddings, /v1/models, /v1/score) and the "
          "playground page (GET /) on HOST:PORT (port 0: any free port). Empty: off. Shares "
          "TLS, tokens, limits, metrics and the drain with gRPC.");
ABSL_FLAG(int, http_max_body_bytes, 1 << 20, "Largest HTTP request body in bytes; larger: 413.");
ABSL_FLAG(absl::Duration, http_read_timeout, absl::Seconds(30), "An HTTP request (headers and "
          "body) must arrive within this long, or the connection closes (slow clients).");
ABSL_FLAG(absl::Duration, http_idle_timeout, absl::Seconds(60), "Close a keep-alive HTTP "
          "connection idle for this long.");
ABSL_FLAG(int, http_threads, 2, "Event-loop threads of the HTTP front (all connections share "
          "them; none has its own).");

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

// Parses "NAME=DIR"; INVALID_ARGUMENT naming the flag value otherwise.
absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view flag_value) {
  const size_t eq = flag_value.find('=');
  if (eq == absl::string_view::npos || eq == 0 || eq + 1 == flag_value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model '", flag_value, "' is not NAME=DIR"));
  }
  return ModelSpec{std::string(flag_value.substr(0, eq)), std::string(flag_value.substr(eq + 1))};
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerFlags(int argc, char** argv) {
  // --help lists the flags of this file (absl's default: only those in a
  // file named after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_helpshort_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/flags.cc");
  };
  usage.contains_help_flags = usage.contains_helpshort_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> storage;
  std::vector<char*> args = NormalizeArgs(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  ServerConfig config;
  config.server.listen = absl::GetFlag(FLAGS_listen);
  config.server.telemetry.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.server.telemetry.metrics = absl::GetFlag(FLAGS_metrics);
  config.server.telemetry.request_log = absl::GetFlag(FLAGS_request_log);
  if (config.server.telemetry.request_log == "none") config.server.telemetry.request_log.clear();
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &config.server.telemetry.log_level)) {
    return absl::InvalidArgumentError("--log-level must be debug, info, warning or error");
  }
  config.server.shutdown_grace = absl::GetFlag(FLAGS_drain_timeout);
  if (absl::GetFlag(FLAGS_shutdown_grace) != absl::ZeroDuration()) {
    config.server.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  }
  config.server.liveness_stall_timeout = absl::GetFlag(FLAGS_liveness_stall_timeout);
  config.server.limits.default_deadline = absl::GetFlag(FLAGS_default_deadline);
  NetworkOptions& net = config.server.network;
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
  config.server.security.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  config.server.security.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  config.server.security.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  config.server.security.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  HttpOptions& http = config.server.http;
  http.listen = absl::GetFlag(FLAGS_http_listen);
  http.max_body_bytes = absl::GetFlag(FLAGS_http_max_body_bytes);
  http.read_timeout = absl::GetFlag(FLAGS_http_read_timeout);
  http.idle_timeout = absl::GetFlag(FLAGS_http_idle_timeout);
  http.threads = absl::GetFlag(FLAGS_http_threads);
  if (http.max_body_bytes < 1) {
    return absl::InvalidArgumentError("--http-max-body-bytes must be >= 1");
  }
  if (http.threads < 1) return absl::InvalidArgumentError("--http-threads must be >= 1");
  config.server.scheduler.max_batch = absl::GetFlag(FLAGS_max_batch);
  config.server.scheduler.max_queue = absl::GetFlag(FLAGS_max_queue);
  config.server.scheduler.max_pending_tokens = absl::GetFlag(FLAGS_max_pending_tokens);
  config.server.scheduler.step_join_max_prompt = absl::GetFlag(FLAGS_step_join_max_prompt);
  config.server.scheduler.step_join_min_active = absl::GetFlag(FLAGS_step_join_min_active);
  config.server.scheduler.prefill_chunk_tokens = absl::GetFlag(FLAGS_prefill_chunk_tokens);
  config.server.scheduler.prefix_cache_bytes = absl::GetFlag(FLAGS_prefix_cache_bytes);
  config.server.scheduler.prefix_cache_interval = absl::GetFlag(FLAGS_prefix_cache_interval);
  config.server.state_key_file = absl::GetFlag(FLAGS_state_key_file);
  config.server.limits.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  config.server.limits.max_tokens_limit = absl::GetFlag(FLAGS_max_tokens_limit);
  config.server.limits.max_stop_strings = absl::GetFlag(FLAGS_max_stop_strings);
  config.server.limits.max_stop_length = absl::GetFlag(FLAGS_max_stop_length);
  config.server.limits.stream_interval = absl::GetFlag(FLAGS_stream_interval);
  if (config.server.limits.stream_interval < 1 ||
      config.server.limits.stream_interval > config.server.limits.max_tokens_limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stream-interval ", config.server.limits.stream_interval,
                     " must be in [1, --max-tokens-limit = ",
                     config.server.limits.max_tokens_limit, "]"));
  }

  ModelLoadOptions& loading = config.server.loading;
  loading.engine.threads = absl::GetFlag(FLAGS_threads);
  loading.engine.max_batch = config.server.scheduler.max_batch;
  if (!ParseEngineKind(absl::GetFlag(FLAGS_engine), &loading.kind)) {
    return absl::InvalidArgumentError("--engine must be onednn or reference");
  }
  if (!ParsePrecision(absl::GetFlag(FLAGS_precision), &loading.engine.precision)) {
    return absl::InvalidArgumentError("--precision must be f32, bf16 or int8");
  }
  RepositoryOptions& repository = config.server.repository;
  repository.directory = absl::GetFlag(FLAGS_model_repository);
  repository.poll_interval = absl::GetFlag(FLAGS_repository_poll_interval);
  if (repository.poll_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--repository-poll-interval ", absl::FormatDuration(repository.poll_interval),
                     " is negative (0: rescan only on SIGHUP)"));
  }
  repository.keep_versions = absl::GetFlag(FLAGS_keep_versions);
  if (repository.keep_versions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--keep-versions ", repository.keep_versions, " must be at least 1"));
  }
  for (const std::string& flag : absl::GetFlag(FLAGS_model)) {
    auto spec = ParseModelSpec(flag);
    if (!spec.ok()) return spec.status();
    config.models.push_back(*spec);
  }
  if (config.models.empty() && repository.directory.empty()) {
    return absl::InvalidArgumentError("no models to serve: give --model NAME=DIR or "
                                      "--model-repository DIR");
  }

  return config;
}

}  // namespace lstmserve
