// Typed options of the serving layer, with their defaults. Filled from flags
// only in server/flags.cc; tests build them directly. Plain values.
#ifndef LSTMSERVE_SERVER_OPTIONS_H_
#define LSTMSERVE_SERVER_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "models/engine.h"
#include "models/engine_factory.h"
#include "server/log_level.h"

namespace lstmserve {

// Per-request limits: requests beyond them get INVALID_ARGUMENT naming the
// field, the value and the limit.
struct RequestLimits {
  int max_prompt_tokens = 4096;  // prompt (Generate) or context + text (Score, Embed)
  int max_tokens_limit = 4096;   // GenerateRequest.max_tokens
  int max_stop_strings = 8;      // GenerateRequest.stop entries
  int max_stop_length = 64;      // bytes per stop string
  int max_logprobs = 20;         // GenerateRequest.logprobs
  // Tokens per message after the first for requests that leave
  // GenerateRequest.stream_interval at 0 (1 = every token at once).
  int stream_interval = 1;
  // A Generate call without a client deadline gets this one (from arrival),
  // so a forgotten stream cannot hold a batch slot forever. Infinite: none.
  absl::Duration default_deadline = absl::Minutes(10);
};

// The gRPC transport: connection lifetime, keepalive, message size. Applied
// as channel arguments of the gRPC server.
struct NetworkOptions {
  // After this long a connection gets GOAWAY, so clients reconnect and
  // spread over the replicas behind a load balancer. Infinite: never.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  // Streams still running on a connection past its age may finish for this
  // long before the connection is closed. Infinite: they always finish.
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  // The server pings an idle-looking connection after this long and drops
  // it if no answer arrives within keepalive_timeout (dead clients, NATs).
  absl::Duration keepalive_time = absl::Minutes(1);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Clients may send keepalive pings this often (more often: GOAWAY
  // "too_many_pings"), also on connections without calls.
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  // Concurrent streams per connection (HTTP/2 SETTINGS); 0 = gRPC's default.
  int max_concurrent_streams = 0;
  // Largest request message; a larger one gets RESOURCE_EXHAUSTED from gRPC.
  int max_receive_message_bytes = 1 << 20;
};

// Transport security and authentication (server/credentials.h, server/auth.h).
struct SecurityOptions {
  // PEM files. cert + key: TLS. + client CA: mutual TLS (clients must
  // present a certificate the CA signed). All empty: plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Non-empty: LanguageModelService calls need `authorization: Bearer T`
  // for a token T listed in this file (health and reflection do not).
  std::string auth_token_file;
};

// One model's scheduling loop (server/scheduler.h).
struct SchedulerOptions {
  // Active sequences advanced together by one engine Step (also the largest
  // Prefill batch). Clamped to the engine's max_batch().
  int max_batch = 64;
  // Requests waiting for a slot; one more gets RESOURCE_EXHAUSTED at once.
  int max_queue = 256;
  // Generated tokens a stream may have queued for a slow reader before its
  // sequence pauses (stays in its slot, skips Steps) until the reader drains
  // the queue to half of this. Bounds per-stream memory.
  int max_pending_tokens = 256;
  // Joining a busy batch through its steps (stall-free batching, as in
  // Sarathi-Serve): while at least `step_join_min_active` sequences are
  // generating, a new prompt of at most `step_join_max_prompt` tokens is not
  // prefilled (which would stall every running stream for the whole
  // prefill) but fed one token per Step alongside the others, where a row
  // costs ~1/N of a step. Its first token comes after len(prompt) steps.
  // Idle or lightly loaded, prompts are prefilled (fastest first token).
  // step_join_max_prompt = 0 turns this off.
  int step_join_max_prompt = 64;
  int step_join_min_active = 8;
  // Chunked prefill: a prompt (Generate) or text (Score, Embed) is fed to
  // the engine at most this many tokens per loop iteration, and every
  // iteration also runs one Step of the generating streams, so a long
  // prompt delays each running stream's next token by about one chunk's
  // time instead of the whole prompt's. Chunks end at multiples of this
  // size counted from the first token (fixed boundaries a prefix-state
  // cache can align with). The default, 64: one Prefill call of T tokens
  // costs about T steps of the recurrence whatever its batch (~10 ms for
  // 256 tokens on the demo model, 2 cores). Measured on two quiet cores with
  // a 4,000-token Score every second among 32 streams (server/README.md):
  // the longest gap between two tokens 16-17 ms with 64, 31-41 ms with 256
  // (the 25 ms goal), for a Score ~12% slower (p50 344-373 vs 318-326 ms)
  // and no less throughput. 0 = whole prompts in one call (still cut at
  // prefix_cache_interval).
  int prefill_chunk_tokens = 64;
  // Prefix-state cache (server/prefix_cache.h): the most bytes of LSTM
  // states (with their token prefixes) kept per model to start later
  // requests from the longest stored prefix; 0 = off. A state is
  // num_layers x 2 x hidden_size floats: 6 KiB for the 2x384 demo model,
  // 8 KiB for a 2x512, 24 KiB for a 3x1024. The default, 64 MiB, holds
  // ~7,500 states of a 2x512 (~2,500 of a 3x1024) — the checkpoints of
  // ~400 distinct 4,096-token prompts, or thousands of system prompts and
  // documents — a fraction of a replica's memory budget (deploy/README.md),
  // while each stored state spares up to prefix_cache_interval tokens of
  // prefill (~10 ms per 256 tokens on the demo model, 2 cores).
  int64_t prefix_cache_bytes = int64_t{64} << 20;
  // States are stored every this many tokens from a text's first token (and
  // at its end). Prefill chunks end at these boundaries too (as well as at
  // multiples of prefill_chunk_tokens), whether the cache is on or off, so a
  // cached state is the one a cold prefill computes (the answer never
  // depends on the cache). Keep it a multiple of prefill_chunk_tokens (the
  // defaults are) to add no chunks.
  int prefix_cache_interval = 256;
};

// Metrics and the request log (server/metrics.h, server/request_log.h).
struct TelemetryOptions {
  // Prometheus exposer address HOST:PORT serving /metrics (port 0: any free
  // port, see LanguageModelServer::metrics_port). Empty: no metrics at all.
  std::string metrics_listen;
  // false: record nothing and serve no /metrics even if metrics_listen is
  // set (the baseline for measuring what recording costs).
  bool metrics = true;
  // Where the JSON request log goes: "-" / "stderr", a file (appended), or
  // empty for none.
  std::string request_log;
  // Request log lines below this level are not written.
  LogLevel log_level = LogLevel::kInfo;
};

// How model versions are loaded (server/model_loader.h): the engine and its
// options. EngineOptions::threads is each model's compute-thread budget
// (0 = all cores, split evenly when several models are served); the
// versions of one model share that budget (server/shared_engine.h).
struct ModelLoadOptions {
  EngineKind kind = EngineKind::kOneDnn;
  EngineOptions engine;
  // Test seam (null in lstmserve): wraps each repository version's engine
  // (outermost, around the shared compute budget), e.g. to hold a version's
  // steps while a test swaps it.
  std::function<std::unique_ptr<InferenceEngine>(int64_t version,
                                                 std::unique_ptr<InferenceEngine> engine)>
      wrap_engine;
};

// The versioned model repository (server/model_repository.h):
// DIRECTORY/NAME/VERSION/ holds a model package, VERSION a positive integer.
struct RepositoryOptions {
  // Empty: no repository (only the models passed to Start, as version 1).
  std::string directory;
  // Rescanned this often (and on SIGHUP / RequestRescan). Zero: only on
  // request. A scan only stats files, so a short interval is cheap.
  absl::Duration poll_interval = absl::Seconds(10);
  // The newest this many valid versions of each model stay loaded and
  // pinnable (model_version). One more may be resident while an old version
  // finishes its sequences; a further new version waits for that.
  int keep_versions = 1;
};

// The HTTP/JSON front (server/http_server.h): OpenAI-style completions with
// Server-Sent Events, embeddings, models, score and the playground page.
struct HttpOptions {
  // HOST:PORT to serve HTTP on (port 0: any free port, see
  // LanguageModelServer::http_port). Empty: no HTTP front.
  std::string listen;
  // Largest request body; a larger one gets 413 before it is read.
  int max_body_bytes = 1 << 20;
  // Largest request line + headers; larger: 431 and the connection closes.
  int max_header_bytes = 16 << 10;
  // A request (headers and body) must arrive within this long after its
  // first byte was awaited, or the connection closes (slow-loris).
  absl::Duration read_timeout = absl::Seconds(30);
  // A keep-alive connection with no request for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(60);
  // A response write that makes no progress for this long closes the
  // connection (and cancels its generation).
  absl::Duration write_timeout = absl::Seconds(60);
  // Threads running the HTTP event loop (accept, parse, write): all
  // connections are multiplexed on them, none has its own thread.
  int threads = 2;
};

struct ServerOptions {
  // gRPC listen address; port 0 picks a free port (LanguageModelServer::port).
  std::string listen = "0.0.0.0:50051";
  TelemetryOptions telemetry;
  // Drain (--drain-timeout): on Shutdown, in-flight streams may run this
  // long before being ended.
  absl::Duration shutdown_grace = absl::Seconds(30);
  // Liveness (server/liveness.h): NOT_SERVING for "lstmserve.v1.Liveness"
  // when a model's scheduling loop made no progress for this long;
  // checked every liveness_period.
  absl::Duration liveness_stall_timeout = absl::Seconds(30);
  absl::Duration liveness_period = absl::Seconds(1);
  NetworkOptions network;
  SecurityOptions security;
  HttpOptions http;  // off unless http.listen is set; shares security (TLS, tokens)
  // Run a short generation through each model before reporting SERVING.
  bool warm_up = true;
  SchedulerOptions scheduler;
  RequestLimits limits;
  // Key file of the portable-state signing keys (server/state_keys.h has the
  // format). Empty: a random per-process key, so states then continue only
  // on this process.
  std::string state_key_file;
  ModelLoadOptions loading;
  RepositoryOptions repository;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_OPTIONS_H_
