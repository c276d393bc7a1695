// lstmbench: a load generator for lstmserve's Generate.
//   Closed loop: --concurrency N streams, each starting a new request when
//   its last one ends.   lstmbench --model m --concurrency 64 --duration 20s
//   Open loop: --rate R requests per second, whatever the latency.
//                         lstmbench --model m --rate 20 --duration 20s
// Reports requests/s, generated tokens/s and p50/p90/p99 (inter-token also
// p99.9) of time to first token, inter-token latency and request latency,
// and the longest gap between two messages of a stream; --json for machines.
// --score_chars N adds a Score request of N characters every
// --score_interval (a long prompt arriving while the streams run), and
// reports its latency.
// --requests_out FILE writes one line per request (start, end, status,
// messages received, request ID) so a test can tell which requests failed
// when; every request carries a unique `x-request-id` (--request_id_prefix
// plus stream and sequence numbers) that a proxy can log.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "client/latency_stats.h"

ABSL_FLAG(std::string, server, "localhost:50051", "lstmserve address HOST:PORT.");
ABSL_FLAG(std::string, model, "", "Model name.");
ABSL_FLAG(std::string, prompt, "The ", "Prompt of every request.");
ABSL_FLAG(int, max_tokens, 128, "Tokens per request.");
ABSL_FLAG(double, temperature, 1.0, "Sampling temperature (0 = greedy).");
ABSL_FLAG(int, stream_interval, 0, "GenerateRequest.stream_interval: tokens per message after "
          "the first (0 = the server's default); inter-token latency is then a message's gap over its tokens.");
ABSL_FLAG(int, concurrency, 16, "Closed loop: concurrent streams.");
ABSL_FLAG(double, rate, 0, "Open loop: requests per second (> 0 selects the open loop).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "How long to send requests.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(120), "Per-request deadline.");
ABSL_FLAG(int, channels, 4, "gRPC channels (connections) the streams share.");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of a table.");
ABSL_FLAG(std::string, requests_out, "", "Write one tab-separated line per request to this "
          "file: start and end (Unix seconds), status code, messages received, tokens, "
          "status message, request ID.");
ABSL_FLAG(int, score_chars, 0, "If > 0: also send a Score request of this many characters "
          "every --score_interval while the streams run (one at a time).");
ABSL_FLAG(absl::Duration, score_interval, absl::Seconds(1), "See --score_chars.");
ABSL_FLAG(std::string, request_id_prefix, "lstmbench",
          "Each request is sent with x-request-id PREFIX-STREAM-N (unique within the run).");

namespace lstmserve {
namespace {

// One finished request, for --requests_out.
struct RequestTrace {
  absl::Time start, end;
  absl::Status status;
  int messages = 0;  // response messages received before the end
  int64_t tokens = 0;
  std::string request_id;
};

struct Results {
  LatencyStats ttft, itl, latency;
  // Time between two successive token-carrying messages of one stream, as
  // received (not divided among the tokens a message carries): its maximum
  // is the longest stall a reader saw.
  LatencyStats gaps;
  LatencyStats scores;  // --score_chars: Score latencies
  int64_t score_errors = 0;
  int64_t ok = 0;
  int64_t tokens = 0;
  std::map<std::string, int64_t> errors;         // by status code
  std::map<std::string, std::string> messages;   // the first message seen per failed code
  std::vector<RequestTrace> traces;              // kept only with --requests_out
  void Merge(const Results& r) {
    ttft.Merge(r.ttft);
    itl.Merge(r.itl);
    latency.Merge(r.latency);
    gaps.Merge(r.gaps);
    scores.Merge(r.scores);
    score_errors += r.score_errors;
    ok += r.ok;
    tokens += r.tokens;
    for (const auto& [code, n] : r.errors) errors[code] += n;
    for (const auto& [code, m] : r.messages) messages.emplace(code, m);
    traces.insert(traces.end(), r.traces.begin(), r.traces.end());
  }
};

double Since(absl::Time t) { return absl::ToDoubleSeconds(absl::Now() - t); }

// One request; adds its measurements to `results`.
void RunOne(LanguageModelClient& client, const v1::GenerateRequest& request,
            const CallOptions& call, Results* results) {
  const absl::Time start = absl::Now();
  absl::Time last = start;
  bool first = true;
  int64_t tokens = 0;
  int messages = 0;
  absl::Status status = client.Generate(
      request,
      [&](const v1::GenerateResponse& m) {
        const absl::Time now = absl::Now();
        const int n = m.tokens_size();
        ++messages;
        if (n > 0) {
          if (first) {
            results->ttft.Add(Since(start));
            first = false;
            // Tokens after the first in the same message arrived together.
            for (int i = 1; i < n; ++i) results->itl.Add(0.0);
          } else {
            results->gaps.Add(absl::ToDoubleSeconds(now - last));
            const double gap = absl::ToDoubleSeconds(now - last) / n;
            for (int i = 0; i < n; ++i) results->itl.Add(gap);
          }
          last = now;
          tokens += n;
        }
        return true;
      },
      call);
  if (status.ok()) {
    results->latency.Add(Since(start));
    results->ok += 1;
    results->tokens += tokens;
  } else {
    const std::string code = absl::StatusCodeToString(status.code());
    results->errors[code] += 1;
    results->messages.emplace(code, std::string(status.message()));
  }
  if (!absl::GetFlag(FLAGS_requests_out).empty()) {
    results->traces.push_back({start, absl::Now(), status, messages, tokens, call.request_id});
  }
}

// --requests_out: one line per request, in order of start.
bool WriteTraces(std::vector<RequestTrace> traces, const std::string& path) {
  std::sort(traces.begin(), traces.end(),
            [](const RequestTrace& a, const RequestTrace& b) { return a.start < b.start; });
  std::ofstream out(path);
  for (const RequestTrace& t : traces) {
    std::string message(t.status.message());
    std::replace(message.begin(), message.end(), '\t', ' ');
    std::replace(message.begin(), message.end(), '\n', ' ');
    out << absl::StrFormat("%.6f\t%.6f\t%s\t%d\t%d\t%s\t%s\n",
                           absl::ToUnixMicros(t.start) * 1e-6, absl::ToUnixMicros(t.end) * 1e-6,
                           absl::StatusCodeToString(t.status.code()), t.messages, t.tokens,
                           message, t.request_id);
  }
  out.close();
  if (!out) std::cerr << "lstmbench: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

void Print(const Results& r, double seconds, const std::string& mode) {
  int64_t errors = 0;
  for (const auto& [code, n] : r.errors) errors += n;
  auto ms = [](const LatencyStats& s, double p) { return s.Percentile(p) * 1e3; };
  if (absl::GetFlag(FLAGS_json)) {
    std::string errs;
    for (const auto& [code, n] : r.errors) {
      errs += absl::StrFormat("%s\"%s\": %d", errs.empty() ? "" : ", ", code, n);
    }
    auto lat = [&](const LatencyStats& s) {
      return absl::StrFormat("{\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
                             "\"p999_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f, "
                             "\"count\": %d}",
                             ms(s, 50), ms(s, 90), ms(s, 99), ms(s, 99.9), ms(s, 100),
                             s.Mean() * 1e3, s.count());
    };
    std::cout << absl::StrFormat(
        "{\"mode\": \"%s\", \"seconds\": %.3f, \"requests\": %d, \"errors\": {%s}, "
        "\"requests_per_second\": %.3f, \"tokens_per_second\": %.1f, \"ttft\": %s, "
        "\"inter_token\": %s, \"latency\": %s, \"message_gap\": %s, \"score\": %s, "
        "\"score_errors\": %d}\n",
        mode, seconds, r.ok, errs, r.ok / seconds, r.tokens / seconds, lat(r.ttft), lat(r.itl),
        lat(r.latency), lat(r.gaps), lat(r.scores), r.score_errors);
    return;
  }
  std::cout << absl::StrFormat("mode %s, %.1f s: %d requests ok, %d failed", mode, seconds,
                               r.ok, errors);
  for (const auto& [code, n] : r.errors) std::cout << absl::StrFormat(" (%s: %d)", code, n);
  for (const auto& [code, m] : r.messages) {
    std::cout << absl::StrFormat("\n  first %s: %s", code, m);
  }
  std::cout << absl::StrFormat("\n%.2f requests/s, %.1f generated tokens/s\n\n", r.ok / seconds,
                               r.tokens / seconds);
  std::cout << absl::StrFormat("%-22s %10s %10s %10s %10s %10s %10s\n", "(ms)", "p50", "p90",
                               "p99", "p99.9", "max", "mean");
  std::vector<std::pair<const char*, const LatencyStats*>> rows = {
      {"time to first token", &r.ttft},
      {"inter-token latency", &r.itl},
      {"message gap", &r.gaps},
      {"request latency", &r.latency}};
  if (r.scores.count() > 0 || r.score_errors > 0) rows.push_back({"score latency", &r.scores});
  for (const auto& [name, s] : rows) {
    std::cout << absl::StrFormat("%-22s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", name,
                                 ms(*s, 50), ms(*s, 90), ms(*s, 99), ms(*s, 99.9), ms(*s, 100),
                                 s->Mean() * 1e3);
  }
  if (r.score_errors > 0) std::cout << absl::StrFormat("%d scores failed\n", r.score_errors);
}

int Run() {
  std::vector<std::unique_ptr<LanguageModelClient>> clients;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lstmbench.channel", i);  // distinct args: distinct connections
    clients.push_back(std::make_unique<LanguageModelClient>(grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), args)));
  }
  v1::GenerateRequest request;
  request.set_model(absl::GetFlag(FLAGS_model));
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  request.set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  request.set_stream_interval(absl::GetFlag(FLAGS_stream_interval));
  request.set_return_tokens(true);
  CallOptions call;
  call.timeout = absl::GetFlag(FLAGS_timeout);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::string prefix = absl::GetFlag(FLAGS_request_id_prefix);

  auto client_score = [&](const v1::ScoreRequest& r) {
    CallOptions c = call;
    c.request_id = prefix + "-score";
    return clients[0]->Score(r, c).status();
  };
  Results total;
  absl::Mutex mu;
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  std::string mode;
  const int score_chars = absl::GetFlag(FLAGS_score_chars);
  if (score_chars > 0) {
    threads.emplace_back([&] {
      const std::string line = "To be, or not to be, that is the question:\n";
      v1::ScoreRequest score;
      score.set_model(absl::GetFlag(FLAGS_model));
      while (static_cast<int>(score.text().size()) < score_chars) {
        score.mutable_text()->append(line);
      }
      score.mutable_text()->resize(score_chars);
      Results mine;
      const absl::Duration interval = absl::GetFlag(FLAGS_score_interval);
      for (absl::Time next = start; next < end; next += interval) {
        absl::SleepFor(next - absl::Now());
        const absl::Time t = absl::Now();
        if (client_score(score).ok()) {
          mine.scores.Add(Since(t));
        } else {
          ++mine.score_errors;
        }
      }
      absl::MutexLock lock(&mu);
      total.Merge(mine);
    });
  }
  if (rate <= 0) {
    const int n = std::max(1, absl::GetFlag(FLAGS_concurrency));
    mode = absl::StrFormat("closed loop, %d streams", n);
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        Results mine;
        LanguageModelClient& client = *clients[i % clients.size()];
        CallOptions mine_call = call;
        for (int64_t seq = 0; absl::Now() < end; ++seq) {
          mine_call.request_id = absl::StrFormat("%s-%d-%d", prefix, i, seq);
          RunOne(client, request, mine_call, &mine);
        }
        absl::MutexLock lock(&mu);
        total.Merge(mine);
      });
    }
  } else {
    mode = absl::StrFormat("open loop, %.2f requests/s", rate);
    const absl::Duration interval = absl::Seconds(1.0 / rate);
    int64_t i = 0;
    for (absl::Time next = start; next < end; next += interval, ++i) {
      absl::SleepFor(next - absl::Now());
      threads.emplace_back([&, i] {
        Results mine;
        CallOptions mine_call = call;
        mine_call.request_id = absl::StrFormat("%s-0-%d", prefix, i);
        RunOne(*clients[i % clients.size()], request, mine_call, &mine);
        absl::MutexLock lock(&mu);
        total.Merge(mine);
      });
    }
  }
  for (auto& t : threads) t.join();
  Print(total, absl::ToDoubleSeconds(absl::Now() - start), mode);
  const std::string requests_out = absl::GetFlag(FLAGS_requests_out);
  if (!requests_out.empty() && !WriteTraces(std::move(total.traces), requests_out)) return 2;
  return total.errors.empty() ? 0 : 1;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Load generator for lstmserve (Generate streams).");
  absl::ParseCommandLine(argc, argv);
  return lstmserve::Run();
}
