#include "server/service.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/generate_reactor.h"
#include "server/status_util.h"
#include "server/validation.h"

namespace lstmserve {
namespace {

uint64_t RandomSeed() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

// The client's deadline, or `arrival + fallback` when it set none.
absl::Time Deadline(const grpc::CallbackServerContext& context, absl::Time arrival,
                    absl::Duration fallback) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return arrival + fallback;
  return absl::FromChrono(deadline);
}

// The request ID the client gave: the request's `request_id` field, else its
// `x-request-id` metadata (what proxies and tracing middleware set); empty
// when it gave neither. A metadata ID over kMaxRequestIdBytes is
// INVALID_ARGUMENT, like the field (the field's length is checked with the
// rest of the request).
absl::StatusOr<std::string> ClientRequestId(const grpc::CallbackServerContext& context,
                                            const std::string& field) {
  if (!field.empty()) return field;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("x-request-id");
  if (it == metadata.end()) return std::string();
  if (it->second.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "x-request-id metadata is %d bytes; the limit is %d", it->second.size(),
        kMaxRequestIdBytes));
  }
  return std::string(it->second.data(), it->second.size());
}

// A Score or Embed text, continuing a client's state when it sent one.
struct ContinuedInput {
  TextInput input;
  int64_t tokens_before = 0;  // text tokens the state covers before input.tokens[0]
};
absl::StatusOr<ContinuedInput> ContinuedText(const ModelStateCodec& codec,
                                             const std::string& state, bool return_state,
                                             std::vector<int32_t> tokens) {
  ContinuedInput out;
  out.input.return_state = return_state;
  if (!state.empty()) {
    auto decoded = codec.Decode(state);
    if (!decoded.ok()) return decoded.status();
    tokens.insert(tokens.begin(), decoded->last_token);
    out.input.start_state = std::move(decoded->state);
    out.tokens_before = decoded->tokens - 1;
  }
  out.input.tokens = std::move(tokens);
  return out;
}

// A Score or Embed's TextControl: named `request_id`, with the client's
// deadline (as Generate's), cancelled when gRPC says the call is (the client
// cancelled or went away). IsCancelled is thread-safe in the callback API,
// and `context` lives until the reactor finishes, which is after the
// scheduler's last look (its done callback).
TextControl UnaryControl(grpc::CallbackServerContext* context, const std::string& request_id,
                         absl::Time arrival, absl::Duration fallback) {
  TextControl control;
  control.request_id = request_id;
  control.deadline = Deadline(*context, arrival, fallback);
  control.cancelled = [context] { return context->IsCancelled(); };
  return control;
}

}  // namespace

LanguageModelService::LanguageModelService(ModelRegistry* registry, const RequestLimits& limits,
                                           RequestObserver* observer,
                                           const BearerTokenAuth* auth)
    : registry_(registry),
      limits_(limits),
      observer_(observer),
      auth_(auth),
      id_prefix_(absl::StrFormat("%08x", static_cast<uint32_t>(RandomSeed()))) {}

std::string LanguageModelService::RequestId(const std::string& from_client) {
  if (!from_client.empty()) return from_client;
  return absl::StrFormat("%s-%d", id_prefix_, next_id_.fetch_add(1));
}

absl::StatusOr<ModelHandle> LanguageModelService::Admit(const grpc::CallbackServerContext& context,
                                                        const std::string& model,
                                                        int64_t version) const {
  if (auth_ != nullptr) {
    if (absl::Status allowed = auth_->Check(context); !allowed.ok()) return allowed;
  }
  if (draining_.load()) return absl::UnavailableError("the server is shutting down");
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_version ", version, " is negative; 0 = the serving version, or a loaded one"));
  }
  return registry_->Find(model, version);
}

RequestRecord LanguageModelService::NewRecord(const grpc::CallbackServerContext& context,
                                             const char* rpc, const std::string& request_id) {
  RequestRecord record;
  record.start = absl::Now();
  record.peer = context.peer();
  record.rpc = rpc;
  record.request_id = request_id;
  return record;
}

void LanguageModelService::FinishUnary(grpc::ServerUnaryReactor* reactor, RequestRecord& record,
                                       const absl::Status& status) const {
  if (observer_ != nullptr) {
    record.code = status.code();
    record.message = std::string(status.message());
    record.duration = absl::Now() - record.start;
    observer_->OnRequestDone(record);
  }
  reactor->Finish(ToGrpcStatus(status));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* LanguageModelService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  const absl::StatusOr<std::string> client_id = ClientRequestId(*context, request->request_id());
  RequestRecord record =
      NewRecord(*context, "Generate", client_id.ok() ? *client_id : request->request_id());
  const absl::Time arrival = record.start;
  auto model = Admit(*context, request->model(), request->model_version());
  if (!model.ok() || !client_id.ok()) {
    auto* reactor = new GenerateReactor(nullptr, observer_, std::move(record));
    reactor->Reject(model.ok() ? client_id.status() : model.status());
    return reactor;
  }
  const ModelHandle version = *std::move(model);
  record.model = version->name();
  record.model_version = version->version();
  record.request_id = RequestId(*client_id);
  const std::string request_id = record.request_id;
  auto* reactor = new GenerateReactor(version, observer_, std::move(record), &write_dispatcher_);
  auto spec = ValidateGenerateRequest(*request, version->tokenizer(), limits_, RandomSeed());
  if (!spec.ok()) {
    reactor->Reject(spec.status());
    return reactor;
  }
  const ModelStateCodec* codec = &version->state_codec();
  if (!request->state().empty()) {
    auto state = codec->Decode(request->state());
    if (!state.ok()) {
      reactor->Reject(state.status());
      return reactor;
    }
    spec->prompt.insert(spec->prompt.begin(), state->last_token);
    spec->start_state = std::move(state->state);
    spec->tokens_before = state->tokens - 1;
  }
  auto job = std::make_unique<GenerationJob>();
  job->return_state = request->return_state() ? codec : nullptr;
  job->spec = *std::move(spec);
  job->spec.request_id = request_id;
  job->sink = reactor;
  job->arrival = arrival;
  job->deadline = Deadline(*context, arrival, limits_.default_deadline);
  reactor->Submit(std::move(job));
  return reactor;
}

grpc::ServerUnaryReactor* LanguageModelService::Score(grpc::CallbackServerContext* context,
                                                      const v1::ScoreRequest* request,
                                                      v1::ScoreResponse* response) {
  const absl::StatusOr<std::string> client_id = ClientRequestId(*context, request->request_id());
  RequestRecord record =
      NewRecord(*context, "Score", client_id.ok() ? *client_id : request->request_id());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto model = Admit(*context, request->model(), request->model_version());
  if (!model.ok() || !client_id.ok()) {
    FinishUnary(reactor, record, model.ok() ? client_id.status() : model.status());
    return reactor;
  }
  ModelHandle version = *std::move(model);
  record.model = version->name();
  record.model_version = version->version();
  response->set_model_version(version->version());
  auto input = ValidateScoreRequest(*request, version->tokenizer(), limits_);
  if (!input.ok()) {
    FinishUnary(reactor, record, input.status());
    return reactor;
  }
  record.prompt_tokens = static_cast<int>(input->tokens.size());
  const ModelStateCodec* codec = &version->state_codec();
  auto text = ContinuedText(*codec, request->state(), request->return_state(),
                            std::move(input->tokens));
  if (!text.ok()) {
    FinishUnary(reactor, record, text.status());
    return reactor;
  }
  // A state's last token comes first: then the text's first token is scored
  // too (conditioned on the state), and the context stays unscored.
  const int first_scored = text->input.start_state.has_value()
                               ? 1 + input->context_tokens
                               : input->first_scored;
  response->set_request_id(RequestId(*client_id));
  record.request_id = response->request_id();
  const int64_t tokens_before = text->tokens_before;
  const int32_t last_token = text->input.tokens.back();
  const int total = static_cast<int>(text->input.tokens.size());
  ModelScheduler* scheduler = version->scheduler();
  absl::Status submitted = scheduler->SubmitScore(
      std::move(text->input), first_scored,
      // Holds the version (and its codec) until the request is done.
      [this, reactor, response, record, codec, tokens_before, last_token, total,
       version = std::move(version)](absl::StatusOr<ScoreResult> result) mutable {
        if (result.ok() && result->before_last.has_value()) {
          response->set_state(codec->Encode(
              {tokens_before + total, last_token, *std::move(result->before_last)}));
        }
        if (result.ok()) {
          response->mutable_token_ids()->Add(result->token_ids.begin(), result->token_ids.end());
          response->mutable_token_logprobs()->Add(result->logprobs.begin(),
                                                  result->logprobs.end());
          response->set_total_logprob(result->total);
          response->set_scored_tokens(static_cast<int32_t>(result->logprobs.size()));
        }
        FinishUnary(reactor, record, result.status());
      },
      UnaryControl(context, record.request_id, record.start, limits_.default_deadline));
  if (!submitted.ok()) FinishUnary(reactor, record, submitted);
  return reactor;
}

grpc::ServerUnaryReactor* LanguageModelService::Embed(grpc::CallbackServerContext* context,
                                                      const v1::EmbedRequest* request,
                                                      v1::EmbedResponse* response) {
  const absl::StatusOr<std::string> client_id = ClientRequestId(*context, request->request_id());
  RequestRecord record =
      NewRecord(*context, "Embed", client_id.ok() ? *client_id : request->request_id());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto model = Admit(*context, request->model(), request->model_version());
  if (!model.ok() || !client_id.ok()) {
    FinishUnary(reactor, record, model.ok() ? client_id.status() : model.status());
    return reactor;
  }
  ModelHandle version = *std::move(model);
  record.model = version->name();
  record.model_version = version->version();
  response->set_model_version(version->version());
  auto tokens = ValidateEmbedRequest(*request, version->tokenizer(), limits_);
  if (!tokens.ok()) {
    FinishUnary(reactor, record, tokens.status());
    return reactor;
  }
  const ModelStateCodec* codec = &version->state_codec();
  response->set_tokens(static_cast<int32_t>(tokens->size()));
  record.prompt_tokens = static_cast<int>(tokens->size());
  auto text =
      ContinuedText(*codec, request->state(), request->return_state(), *std::move(tokens));
  if (!text.ok()) {
    FinishUnary(reactor, record, text.status());
    return reactor;
  }
  response->set_request_id(RequestId(*client_id));
  record.request_id = response->request_id();
  const bool all_layers = request->include_all_layers();
  const int64_t tokens_before = text->tokens_before;
  const int32_t last_token = text->input.tokens.back();
  const int total = static_cast<int>(text->input.tokens.size());
  ModelScheduler* scheduler = version->scheduler();
  absl::Status submitted = scheduler->SubmitEmbed(
      std::move(text->input),
      // Holds the version (and its codec) until the request is done.
      [this, reactor, response, all_layers, record, codec, tokens_before, last_token, total,
       version = std::move(version)](absl::StatusOr<EmbedResult> result) mutable {
        if (result.ok() && result->before_last.has_value()) {
          response->set_state(codec->Encode(
              {tokens_before + total, last_token, *std::move(result->before_last)}));
        }
        absl::StatusOr<SequenceState> state =
            result.ok() ? absl::StatusOr<SequenceState>(std::move(result->state))
                        : absl::StatusOr<SequenceState>(result.status());
        if (state.ok() && !state->layers.empty()) {
          const std::vector<float>& top = state->layers.back().h;
          response->mutable_embedding()->Add(top.begin(), top.end());
          if (all_layers) {
            for (const LayerState& l : state->layers) {
              v1::LayerState* out = response->add_layers();
              out->mutable_h()->Add(l.h.begin(), l.h.end());
              out->mutable_c()->Add(l.c.begin(), l.c.end());
            }
          }
        }
        FinishUnary(reactor, record, state.status());
      },
      UnaryControl(context, record.request_id, record.start, limits_.default_deadline));
  if (!submitted.ok()) FinishUnary(reactor, record, submitted);
  return reactor;
}

grpc::ServerUnaryReactor* LanguageModelService::ListModels(grpc::CallbackServerContext* context,
                                                           const v1::ListModelsRequest*,
                                                           v1::ListModelsResponse* response) {
  RequestRecord record = NewRecord(*context, "ListModels", "");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (auth_ != nullptr) {
    if (absl::Status allowed = auth_->Check(*context); !allowed.ok()) {
      FinishUnary(reactor, record, allowed);
      return reactor;
    }
  }
  if (draining_.load()) {
    FinishUnary(reactor, record, absl::UnavailableError("the server is shutting down"));
    return reactor;
  }
  for (v1::ModelInfo& m : registry_->List()) *response->add_models() = std::move(m);
  FinishUnary(reactor, record, absl::OkStatus());
  return reactor;
}

}  // namespace lstmserve
