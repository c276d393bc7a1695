#include "server/http_routes.h"

#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/http_status_util.h"
#include "server/openai_json.h"
#include "server/playground.h"
#include "server/sse_sink.h"
#include "server/validation.h"

namespace lstmserve {
namespace {

uint64_t RandomSeed() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

void ReplyJson(HttpExchange& exchange, int status, std::string body) {
  exchange.Reply(HttpReply{status, "application/json", std::move(body)});
}

// `status` with a message about the gRPC field `from` about the JSON field
// `to` instead (the embeddings body calls Embed's `text` `input`).
absl::Status RenameField(const absl::Status& status, absl::string_view from, absl::string_view to) {
  if (!absl::StartsWith(status.message(), absl::StrCat(from, " "))) return status;
  return absl::Status(status.code(), absl::StrCat(to, status.message().substr(from.size())));
}

void ReplyError(HttpExchange& exchange, const absl::Status& status, int http_status = 0) {
  HttpError error = ToHttpError(status, http_status);
  ReplyJson(exchange, error.http_status, std::move(error.body));
}

// A Score or Embed's TextControl: named `request_id`, with the server's
// default deadline (HTTP carries none), cancelled once the client closed or
// reset the connection (the server watches it while the exchange is open).
TextControl ExchangeControl(std::shared_ptr<HttpExchange> exchange, const std::string& request_id,
                            absl::Time deadline) {
  TextControl control;
  control.request_id = request_id;
  control.deadline = deadline;
  control.cancelled = [exchange = std::move(exchange)] { return exchange->client_gone(); };
  return control;
}

}  // namespace

HttpApi::HttpApi(ModelRegistry* registry, const RequestLimits& limits, RequestObserver* observer,
                 const BearerTokenAuth* auth)
    : registry_(registry),
      limits_(limits),
      observer_(observer),
      auth_(auth),
      id_prefix_(absl::StrFormat("%08x", static_cast<uint32_t>(RandomSeed()))) {}

void HttpApi::Handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
  std::string path = request.target.substr(0, request.target.find('?'));
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (path == "/" || path == "/index.html") {
    if (!get) return ReplyError(*exchange, absl::InvalidArgumentError("use GET for /"), 405);
    return exchange->Reply(HttpReply{200, "text/html; charset=utf-8", std::string(PlaygroundHtml())});
  }
  if (path == "/health/live") return ReplyJson(*exchange, 200, R"({"status":"SERVING"})");
  if (path == "/health/ready") {
    const bool serving = ready_.load() && !draining_.load();
    return ReplyJson(*exchange, serving ? 200 : 503,
                     serving ? R"({"status":"SERVING"})" : R"({"status":"NOT_SERVING"})");
  }
  struct Route {
    const char* path;
    bool post;
  };
  static constexpr Route kRoutes[] = {
      {kCompletions, true}, {kEmbeddings, true}, {kScore, true}, {kModels, false}};
  for (const Route& route : kRoutes) {
    if (path != route.path) continue;
    if (route.post ? !post : !get) {
      return ReplyError(*exchange,
                        absl::InvalidArgumentError(absl::StrCat(
                            "use ", route.post ? "POST" : "GET", " for ", route.path)),
                        405);
    }
    if (path == kCompletions) return Completions(request, std::move(exchange));
    if (path == kEmbeddings) return Embeddings(request, std::move(exchange));
    if (path == kScore) return Score(request, std::move(exchange));
    return Models(request, *exchange);
  }
  ReplyError(*exchange, absl::NotFoundError(absl::StrCat("no route for ", request.method, " ",
                                                         path.substr(0, 200))));
}

absl::Status HttpApi::Admit(const HttpRequest& request) const {
  if (auth_ != nullptr) {
    if (absl::Status allowed = auth_->CheckHeader(request.authorization,
                                                  request.has_authorization);
        !allowed.ok()) {
      return allowed;
    }
  }
  if (draining_.load()) return absl::UnavailableError("the server is shutting down");
  return absl::OkStatus();
}

absl::StatusOr<std::string> HttpApi::RequestId(const HttpRequest& request) {
  if (request.request_id.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "X-Request-Id header is %d bytes; the limit is %d", request.request_id.size(),
        kMaxRequestIdBytes));
  }
  if (!request.request_id.empty()) return request.request_id;
  return absl::StrFormat("%s-h%d", id_prefix_, next_id_.fetch_add(1));
}

absl::StatusOr<std::string> HttpApi::Begin(const HttpRequest& request, HttpExchange& exchange,
                                          RequestRecord* record) {
  absl::StatusOr<std::string> id = RequestId(request);
  if (id.ok()) {
    record->request_id = *id;
    exchange.SetRequestId(*id);
  }
  absl::Status admitted = Admit(request);
  if (!admitted.ok() || !id.ok()) {
    const absl::Status status = !admitted.ok() ? admitted : id.status();
    Fail(*record, status, exchange);
    return status;
  }
  return id;
}

absl::StatusOr<ModelHandle> HttpApi::FindModel(const std::string& name, int64_t version,
                                               RequestRecord* record) const {
  absl::StatusOr<ModelHandle> model = registry_->Find(name, version);
  if (model.ok()) {
    record->model = (*model)->name();
    record->model_version = (*model)->version();
  }
  return model;
}

RequestRecord HttpApi::NewRecord(const HttpRequest& request, const char* rpc) const {
  RequestRecord record;
  record.start = absl::Now();
  record.peer = request.peer;
  record.rpc = rpc;
  return record;
}

void HttpApi::Report(RequestRecord& record, const absl::Status& status) const {
  if (observer_ == nullptr) return;
  record.code = status.code();
  record.message = std::string(status.message());
  record.duration = absl::Now() - record.start;
  observer_->OnRequestDone(record);
}

void HttpApi::Fail(RequestRecord& record, const absl::Status& status,
                   HttpExchange& exchange) const {
  Report(record, status);
  ReplyError(exchange, status);
}

void HttpApi::Completions(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
  RequestRecord record = NewRecord(request, kCompletions);
  absl::StatusOr<std::string> id = Begin(request, *exchange, &record);
  if (!id.ok()) return;
  absl::StatusOr<CompletionRequest> parsed = ParseCompletionRequest(request.body);
  if (!parsed.ok()) return Fail(record, parsed.status(), *exchange);
  absl::StatusOr<ModelHandle> model =
      FindModel(parsed->request.model(), parsed->request.model_version(), &record);
  if (!model.ok()) return Fail(record, model.status(), *exchange);
  absl::StatusOr<GenerationSpec> spec =
      ValidateGenerateRequest(parsed->request, (*model)->tokenizer(), limits_, RandomSeed());
  if (!spec.ok()) return Fail(record, spec.status(), *exchange);
  auto job = std::make_unique<GenerationJob>();
  job->spec = *std::move(spec);
  job->spec.request_id = *id;
  job->arrival = record.start;
  job->deadline = record.start + limits_.default_deadline;
  CompletionSink::Params params;
  params.header.id = absl::StrCat("cmpl-", *id);
  params.header.created = absl::ToUnixSeconds(record.start);
  params.header.model = (*model)->name();
  params.header.model_version = (*model)->version();
  params.stream = parsed->stream;
  params.include_usage = parsed->include_usage;
  params.logprobs = parsed->logprobs;
  params.version = *model;
  params.tokenizer = &(*model)->tokenizer();
  params.scheduler = (*model)->scheduler();
  params.observer = observer_;
  params.record = std::move(record);
  CompletionSink::Run(std::move(params), std::move(exchange), std::move(job));
}

void HttpApi::Embeddings(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
  RequestRecord record = NewRecord(request, kEmbeddings);
  absl::StatusOr<std::string> id = Begin(request, *exchange, &record);
  if (!id.ok()) return;
  absl::StatusOr<EmbeddingRequest> parsed = ParseEmbeddingRequest(request.body);
  if (!parsed.ok()) return Fail(record, parsed.status(), *exchange);
  absl::StatusOr<ModelHandle> model =
      FindModel(parsed->request.model(), parsed->request.model_version(), &record);
  if (!model.ok()) return Fail(record, model.status(), *exchange);
  absl::StatusOr<std::vector<int32_t>> tokens =
      ValidateEmbedRequest(parsed->request, (*model)->tokenizer(), limits_);
  if (!tokens.ok()) return Fail(record, RenameField(tokens.status(), "text", "input"), *exchange);
  record.prompt_tokens = static_cast<int>(tokens->size());
  const int count = static_cast<int>(tokens->size());
  const std::string name = (*model)->name();
  absl::Status submitted = (*model)->scheduler()->SubmitEmbed(
      *std::move(tokens),
      // Holds the version until the request is done (a swap may retire it).
      [this, exchange, record, count, name, base64 = parsed->base64, id = *id,
       version = *model](absl::StatusOr<EmbedResult> result) mutable {
        if (!result.ok()) return Fail(record, result.status(), *exchange);
        const SequenceState* state = &result->state;
        v1::EmbedResponse response;
        response.set_request_id(id);
        response.set_tokens(count);
        response.set_model_version(version->version());
        if (!state->layers.empty()) {
          const std::vector<float>& top = state->layers.back().h;
          response.mutable_embedding()->Add(top.begin(), top.end());
        }
        Report(record, absl::OkStatus());
        ReplyJson(*exchange, 200, EmbeddingJson(response, name, base64));
      },
      ExchangeControl(exchange, *id, record.start + limits_.default_deadline));
  if (!submitted.ok()) Fail(record, submitted, *exchange);
}

void HttpApi::Score(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
  RequestRecord record = NewRecord(request, kScore);
  absl::StatusOr<std::string> id = Begin(request, *exchange, &record);
  if (!id.ok()) return;
  absl::StatusOr<v1::ScoreRequest> parsed = ParseScoreRequest(request.body);
  if (!parsed.ok()) return Fail(record, parsed.status(), *exchange);
  absl::StatusOr<ModelHandle> model =
      FindModel(parsed->model(), parsed->model_version(), &record);
  if (!model.ok()) return Fail(record, model.status(), *exchange);
  absl::StatusOr<ScoreInput> input = ValidateScoreRequest(*parsed, (*model)->tokenizer(), limits_);
  if (!input.ok()) return Fail(record, input.status(), *exchange);
  record.prompt_tokens = static_cast<int>(input->tokens.size());
  const std::string name = (*model)->name();
  absl::Status submitted = (*model)->scheduler()->SubmitScore(
      std::move(input->tokens), input->first_scored,
      // Holds the version until the request is done (a swap may retire it).
      [this, exchange, record, name, id = *id,
       version = *model](absl::StatusOr<ScoreResult> result) mutable {
        if (!result.ok()) return Fail(record, result.status(), *exchange);
        v1::ScoreResponse response;
        response.set_request_id(id);
        response.mutable_token_ids()->Add(result->token_ids.begin(), result->token_ids.end());
        response.mutable_token_logprobs()->Add(result->logprobs.begin(), result->logprobs.end());
        response.set_total_logprob(result->total);
        response.set_scored_tokens(static_cast<int32_t>(result->logprobs.size()));
        response.set_model_version(version->version());
        Report(record, absl::OkStatus());
        ReplyJson(*exchange, 200, ScoreJson(response, name));
      },
      ExchangeControl(exchange, *id, record.start + limits_.default_deadline));
  if (!submitted.ok()) Fail(record, submitted, *exchange);
}

void HttpApi::Models(const HttpRequest& request, HttpExchange& exchange) {
  RequestRecord record = NewRecord(request, kModels);
  if (absl::Status admitted = Admit(request); !admitted.ok()) {
    return Fail(record, admitted, exchange);
  }
  std::vector<v1::ModelInfo> models;
  for (v1::ModelInfo& m : registry_->List()) models.push_back(std::move(m));
  Report(record, absl::OkStatus());
  ReplyJson(exchange, 200, ModelsJson(models));
}

}  // namespace lstmserve
