// lstmsoak: a soak test driver for a running lstmserve. Several threads send
// a mix of requests for --duration, and every outcome is checked against
// what that kind of request must get:
//   generate   greedy and seeded-sampling generations: OK, FINISH_REASON_LENGTH,
//              and exactly the text the same request got alone at start-up;
//   score      OK and the start-up log-probabilities (within 1e-3);
//   embed      OK and the start-up embedding (within 1e-3);
//   cancel     a long generation cancelled after 1-4 messages: CANCELLED;
//   deadline   a long generation with a 1-50 ms deadline: DEADLINE_EXCEEDED;
//   invalid    unknown model: NOT_FOUND; bad fields: INVALID_ARGUMENT;
//   models     ListModels: OK and the model is listed.
// Every 20th request of a thread goes over a new connection. The server's
// resident memory (VmRSS of --server-pid) is sampled every --sample-every
// and printed as a table; at the end one JSON summary line. With
// --metrics-port the server's lstmserve_active_sequences and
// lstmserve_queued_requests must return to 0 after the load stops.
//
// Exit code 1 when any outcome was unexpected, the server went away, a slot
// was left busy, or RSS grew by --max-growth-pct or more between the end of
// the warm-up (max(10 s, 20% of the run)) and the end.
//   lstmsoak --server 127.0.0.1:50051 --model shakespeare --server-pid 1234 --duration 60s
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "lstmserve address HOST:PORT.");
ABSL_FLAG(std::string, model, "", "Model name.");
ABSL_FLAG(int, server_pid, 0, "The server's process id (its VmRSS is sampled); 0: no RSS.");
ABSL_FLAG(int, metrics_port, 0, "The server's metrics port on 127.0.0.1; 0: no slot check.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(60), "How long to send requests.");
ABSL_FLAG(int, threads, 8, "Client threads, each with one request in flight.");
ABSL_FLAG(absl::Duration, sample_every, absl::Seconds(5), "RSS sampling period.");
ABSL_FLAG(double, max_growth_pct, 5.0, "Fail when RSS grows this much after warm-up.");
ABSL_FLAG(std::string, prompts, "ROMEO:|JULIET:\nO|First Citizen:|KING|To be, or not",
          "'|'-separated prompts and texts in the model's vocabulary.");
ABSL_FLAG(int, long_tokens, 4096, "max_tokens of the generations that are cancelled or "
          "time out (at most the server's --max-tokens-limit).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the request mix.");
ABSL_FLAG(std::string, json_out, "", "Also write the JSON summary to this file.");

namespace lstmserve {
namespace {

enum Kind { kGenerate, kScore, kEmbed, kCancel, kDeadline, kInvalid, kModels, kNumKinds };
constexpr const char* kKindNames[] = {"generate", "score",   "embed", "cancel",
                                      "deadline", "invalid", "models"};
// Relative frequency of each kind.
constexpr int kWeights[] = {30, 15, 15, 10, 10, 15, 5};

CallOptions Timeout(absl::Duration d) {
  CallOptions c;
  c.timeout = d;
  return c;
}

// What each request must get, computed once, alone, before the load starts.
struct Expected {
  std::string model;
  std::vector<std::string> prompts;
  std::vector<v1::GenerateRequest> generations;  // greedy and seeded
  std::vector<std::string> generation_texts;
  std::vector<v1::ScoreRequest> scores;
  std::vector<v1::ScoreResponse> score_results;
  std::vector<v1::EmbedRequest> embeds;
  std::vector<v1::EmbedResponse> embed_results;
  // Invalid requests and the code each must get.
  std::vector<std::pair<v1::GenerateRequest, absl::StatusCode>> invalid;
};

absl::StatusOr<Expected> Baseline(LanguageModelClient& client, const std::string& model,
                                  const std::vector<std::string>& prompts, bool char_model) {
  Expected e;
  e.model = model;
  e.prompts = prompts;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (int sampled = 0; sampled < 2; ++sampled) {
      v1::GenerateRequest r;
      r.set_model(model);
      r.set_prompt(prompts[i]);
      r.set_max_tokens(24 + 8 * static_cast<int>(i));
      if (sampled) {
        r.set_temperature(0.8f);
        r.set_top_k(20);
        r.set_top_p(0.95f);
        r.set_seed(1000 + i);
      } else {
        r.set_temperature(0.0f);
      }
      auto g = client.GenerateText(r, Timeout(absl::Seconds(60)));
      if (!g.ok()) return g.status();
      e.generations.push_back(r);
      e.generation_texts.push_back(g->text);
    }
    v1::ScoreRequest s;
    s.set_model(model);
    s.set_text(prompts[i]);
    if (i % 2 == 1) s.set_context(prompts[(i + 1) % prompts.size()]);
    auto sr = client.Score(s, Timeout(absl::Seconds(60)));
    if (!sr.ok()) return sr.status();
    e.scores.push_back(s);
    e.score_results.push_back(*sr);
    v1::EmbedRequest m;
    m.set_model(model);
    m.set_text(prompts[i]);
    m.set_include_all_layers(i % 2 == 0);
    auto er = client.Embed(m, Timeout(absl::Seconds(60)));
    if (!er.ok()) return er.status();
    e.embeds.push_back(m);
    e.embed_results.push_back(*er);
  }
  auto add_invalid = [&](auto edit, absl::StatusCode code) {
    v1::GenerateRequest r;
    r.set_model(model);
    r.set_prompt(prompts[0]);
    r.set_max_tokens(8);
    edit(r);
    e.invalid.push_back({r, code});
  };
  using C = absl::StatusCode;
  add_invalid([](auto& r) { r.set_model("no-such-model"); }, C::kNotFound);
  add_invalid([](auto& r) { r.set_prompt(""); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.set_max_tokens(0); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.set_max_tokens(1 << 30); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.set_temperature(-1.0f); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.set_top_p(1.5f); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.set_top_k(-2); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.set_logprobs(1000); }, C::kInvalidArgument);
  add_invalid([](auto& r) { r.add_stop(""); }, C::kInvalidArgument);
  if (char_model) {
    // U+9F98, in no char model's vocabulary we ship.
    add_invalid([](auto& r) { r.set_prompt("AB\xE9\xBE\x98"); }, C::kInvalidArgument);
  }
  return e;
}

// Counts and the first few surprises.
class Tally {
 public:
  void Record(Kind kind, bool expected, const std::string& what) {
    absl::MutexLock lock(&mu_);
    ++sent_[kind];
    if (!expected) {
      ++unexpected_[kind];
      if (examples_.size() < 20) examples_.push_back(absl::StrCat(kKindNames[kind], ": ", what));
    }
  }
  int64_t total() const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (int64_t v : sent_) n += v;
    return n;
  }
  int64_t unexpected() const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (int64_t v : unexpected_) n += v;
    return n;
  }
  std::string Json() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> sent, bad;
    for (int k = 0; k < kNumKinds; ++k) {
      sent.push_back(absl::StrFormat("\"%s\":%d", kKindNames[k], sent_[k]));
      bad.push_back(absl::StrFormat("\"%s\":%d", kKindNames[k], unexpected_[k]));
    }
    return absl::StrCat("\"requests\":{", absl::StrJoin(sent, ","), "},\"unexpected\":{",
                        absl::StrJoin(bad, ","), "}");
  }
  std::vector<std::string> examples() const {
    absl::MutexLock lock(&mu_);
    return examples_;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t sent_[kNumKinds] ABSL_GUARDED_BY(mu_) = {};
  int64_t unexpected_[kNumKinds] ABSL_GUARDED_BY(mu_) = {};
  std::vector<std::string> examples_ ABSL_GUARDED_BY(mu_);
};

std::string Describe(const absl::Status& s) { return s.ok() ? "OK" : s.ToString(); }

// Runs one request of `kind`; returns "" when the outcome is the expected
// one, else what happened.
std::string RunOne(Kind kind, LanguageModelClient& client, const Expected& e, std::mt19937& rng) {
  auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  const CallOptions normal = Timeout(absl::Seconds(120));
  switch (kind) {
    case kGenerate: {
      const size_t i = pick(e.generations.size());
      auto g = client.GenerateText(e.generations[i], normal);
      if (!g.ok()) return Describe(g.status());
      if (g->last.finish_reason() != v1::FINISH_REASON_LENGTH) {
        return absl::StrCat("finish_reason ", g->last.finish_reason());
      }
      if (g->text != e.generation_texts[i]) {
        return absl::StrCat("text '", g->text, "' != '", e.generation_texts[i], "'");
      }
      return "";
    }
    case kScore: {
      const size_t i = pick(e.scores.size());
      auto s = client.Score(e.scores[i], normal);
      if (!s.ok()) return Describe(s.status());
      const v1::ScoreResponse& want = e.score_results[i];
      if (s->scored_tokens() != want.scored_tokens() ||
          std::abs(s->total_logprob() - want.total_logprob()) > 1e-3) {
        return absl::StrCat("total_logprob ", s->total_logprob(), " != ", want.total_logprob());
      }
      return "";
    }
    case kEmbed: {
      const size_t i = pick(e.embeds.size());
      auto m = client.Embed(e.embeds[i], normal);
      if (!m.ok()) return Describe(m.status());
      const v1::EmbedResponse& want = e.embed_results[i];
      if (m->embedding_size() != want.embedding_size() ||
          m->layers_size() != want.layers_size()) {
        return "embedding shape differs";
      }
      for (int j = 0; j < want.embedding_size(); ++j) {
        if (std::abs(m->embedding(j) - want.embedding(j)) > 1e-3f) {
          return absl::StrCat("embedding[", j, "] ", m->embedding(j), " != ", want.embedding(j));
        }
      }
      return "";
    }
    case kCancel: {
      v1::GenerateRequest r = e.generations[pick(e.generations.size())];
      r.set_max_tokens(absl::GetFlag(FLAGS_long_tokens));
      const int after = 1 + static_cast<int>(pick(4));
      int seen = 0;
      absl::Status s =
          client.Generate(r, [&](const v1::GenerateResponse&) { return ++seen < after; }, normal);
      return s.code() == absl::StatusCode::kCancelled ? "" : Describe(s);
    }
    case kDeadline: {
      v1::GenerateRequest r = e.generations[pick(e.generations.size())];
      r.set_max_tokens(absl::GetFlag(FLAGS_long_tokens));
      const absl::Duration d = absl::Milliseconds(1 + static_cast<int>(pick(50)));
      absl::Status s = client.GenerateText(r, Timeout(d)).status();
      return s.code() == absl::StatusCode::kDeadlineExceeded ? "" : Describe(s);
    }
    case kInvalid: {
      const auto& [r, code] = e.invalid[pick(e.invalid.size())];
      absl::Status s = client.GenerateText(r, normal).status();
      if (s.code() != code) return absl::StrCat(Describe(s), " (want code ", code, ")");
      if (s.message().empty()) return "empty error message";
      return "";
    }
    case kModels: {
      auto m = client.ListModels(normal);
      if (!m.ok()) return Describe(m.status());
      for (const auto& info : m->models()) {
        if (info.name() == e.model) return "";
      }
      return "model not listed";
    }
    case kNumKinds:
      break;
  }
  return "unknown kind";
}

void Worker(int index, const std::string& target, const Expected& e, absl::Time end,
            Tally* tally) {
  std::mt19937 rng(static_cast<uint32_t>(absl::GetFlag(FLAGS_seed) * 7919 + index));
  std::discrete_distribution<int> kinds(std::begin(kWeights), std::end(kWeights));
  auto client = std::make_unique<LanguageModelClient>(target);
  for (int n = 0; absl::Now() < end; ++n) {
    if (n > 0 && n % 20 == 0) client = std::make_unique<LanguageModelClient>(target);
    const Kind kind = static_cast<Kind>(kinds(rng));
    const std::string what = RunOne(kind, *client, e, rng);
    tally->Record(kind, what.empty(), what);
  }
}

// VmRSS of `pid` in KiB; -1 when the process is gone.
int64_t ResidentKb(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// GET /metrics from 127.0.0.1:port; the body, or "" on failure.
std::string ScrapeMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// Sum of the samples of metric `name` (all label sets); -1 if absent.
double MetricSum(const std::string& text, const std::string& name) {
  double sum = -1;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != '{' && line[name.size()] != ' ') continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

int Run() {
  const std::string target = absl::GetFlag(FLAGS_server);
  const std::string model = absl::GetFlag(FLAGS_model);
  const int pid = absl::GetFlag(FLAGS_server_pid);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = std::max(absl::Seconds(10), duration / 5);
  if (model.empty()) {
    std::cerr << "lstmsoak: --model is required\n";
    return 2;
  }
  LanguageModelClient client(target);
  auto models = client.ListModels(Timeout(absl::Seconds(30)));
  if (!models.ok()) {
    std::cerr << "lstmsoak: ListModels: " << models.status() << "\n";
    return 1;
  }
  bool char_model = true;
  for (const auto& m : models->models()) {
    if (m.name() == model) char_model = m.tokenizer() == "char";
  }
  const std::vector<std::string> prompts = absl::StrSplit(absl::GetFlag(FLAGS_prompts), '|');
  auto expected = Baseline(client, model, prompts, char_model);
  if (!expected.ok()) {
    std::cerr << "lstmsoak: baseline requests failed: " << expected.status() << "\n";
    return 1;
  }

  Tally tally;
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> workers;
  for (int i = 0; i < absl::GetFlag(FLAGS_threads); ++i) {
    workers.emplace_back(Worker, i, target, std::cref(*expected), end, &tally);
  }
  std::printf("%8s %10s %9s %10s %8s %10s\n", "time_s", "rss_mb", "growth%", "requests",
              "req/s", "unexpected");
  int64_t warm_rss = -1, max_rss_after = -1, last_rss = -1, last_total = 0;
  bool server_gone = false;
  absl::Time last_time = start;
  auto sample = [&](absl::Time now) {
    const int64_t rss = pid > 0 ? ResidentKb(pid) : 0;
    if (pid > 0 && rss < 0) server_gone = true;
    const double t = absl::ToDoubleSeconds(now - start);
    if (warm_rss < 0 && now - start >= warmup && rss > 0) warm_rss = rss;
    if (warm_rss > 0) max_rss_after = std::max(max_rss_after, rss);
    last_rss = rss;
    const int64_t total = tally.total();
    const double rate = (total - last_total) / std::max(1e-9, absl::ToDoubleSeconds(now - last_time));
    last_total = total;
    last_time = now;
    const std::string growth =
        warm_rss > 0 ? absl::StrFormat("%+.2f", 100.0 * (rss - warm_rss) / warm_rss) : "warm-up";
    std::printf("%8.1f %10.1f %9s %10lld %8.1f %10lld\n", t, rss / 1024.0, growth.c_str(),
                static_cast<long long>(total), rate, static_cast<long long>(tally.unexpected()));
    std::fflush(stdout);
  };
  for (absl::Time next = start + absl::GetFlag(FLAGS_sample_every); next < end && !server_gone;
       next += absl::GetFlag(FLAGS_sample_every)) {
    absl::SleepFor(next - absl::Now());
    sample(absl::Now());
  }
  for (auto& w : workers) w.join();
  sample(absl::Now());  // after the last request ended

  // Every slot and queue entry must be free again.
  double active = -1, queued = -1;
  const int metrics_port = absl::GetFlag(FLAGS_metrics_port);
  if (metrics_port > 0) {
    for (absl::Time until = absl::Now() + absl::Seconds(10); absl::Now() < until;) {
      const std::string text = ScrapeMetrics(metrics_port);
      active = MetricSum(text, "lstmserve_active_sequences");
      queued = MetricSum(text, "lstmserve_queued_requests");
      if (active == 0 && queued == 0) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  const bool slots_free = metrics_port == 0 || (active == 0 && queued == 0);
  const double growth = warm_rss > 0 ? 100.0 * (last_rss - warm_rss) / warm_rss : 0.0;
  const bool memory_ok = pid == 0 || (warm_rss > 0 && growth < absl::GetFlag(FLAGS_max_growth_pct));
  const bool pass = tally.unexpected() == 0 && !server_gone && slots_free && memory_ok;
  for (const std::string& ex : tally.examples()) std::printf("unexpected: %s\n", ex.c_str());
  const std::string json = absl::StrFormat(
      "{\"duration_s\":%.1f,\"threads\":%d,\"warmup_s\":%.1f,%s,\"total_requests\":%d,"
      "\"unexpected_total\":%d,\"rss_kb\":{\"warmup_end\":%d,\"max_after_warmup\":%d,"
      "\"end\":%d},\"rss_growth_pct\":%.2f,\"server_gone\":%s,\"active_after\":%g,"
      "\"queued_after\":%g,\"pass\":%s}",
      absl::ToDoubleSeconds(absl::Now() - start), absl::GetFlag(FLAGS_threads),
      absl::ToDoubleSeconds(warmup), tally.Json(), tally.total(), tally.unexpected(), warm_rss,
      max_rss_after, last_rss, growth, server_gone ? "true" : "false", active, queued,
      pass ? "true" : "false");
  std::printf("%s\n", json.c_str());
  if (const std::string path = absl::GetFlag(FLAGS_json_out); !path.empty()) {
    std::ofstream(path) << json << "\n";
  }
  if (!pass) {
    std::cerr << "lstmsoak: FAILED:" << (tally.unexpected() > 0 ? " unexpected outcomes;" : "")
              << (server_gone ? " the server went away;" : "")
              << (slots_free ? "" : " slots still busy after the load;")
              << (memory_ok ? "" : " resident memory grew after warm-up;") << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Soak test: mixed load against a running lstmserve, every outcome checked, server RSS\n"
      "sampled. lstmsoak --server HOST:PORT --model NAME --server-pid PID --duration 60s");
  // Flag names may use dashes (--server-pid) like lstmserve's.
  std::vector<std::string> storage;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && arg.rfind("--", 0) == 0) {
      for (size_t k = 2; k < arg.size() && arg[k] != '='; ++k) {
        if (arg[k] == '-') arg[k] = '_';
      }
    }
    storage.push_back(arg);
  }
  for (auto& s : storage) args.push_back(s.data());
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return lstmserve::Run();
}
