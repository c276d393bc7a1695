#include "server/model_version.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "models/model_config.h"
#include "server/model_fingerprint.h"
#include "base/status_macros.h"

namespace lstmserve {
namespace {

v1::ModelInfo Describe(const std::string& name, int64_t version, const InferenceEngine& engine,
                       int max_batch) {
  const ModelConfig& c = engine.config();
  v1::ModelInfo info;
  info.set_name(name);
  info.set_num_layers(c.num_layers);
  info.set_hidden_size(c.hidden_size);
  info.set_embedding_dim(c.embedding_dim);
  info.set_proj_size(c.proj_size);
  info.set_vocab_size(c.vocab_size);
  info.set_tokenizer(TokenizerTypeName(c.tokenizer.type));
  info.set_precision(PrecisionName(engine.precision()));
  info.set_parameter_count(ParameterCount(c));
  info.set_engine(engine.kind());
  info.set_max_batch(max_batch);
  info.set_version(version);
  return info;
}

// Collects the end of one warm-up generation; thread-safe.
class WarmUpSink final : public GenerationSink {
 public:
  void Send(v1::GenerateResponse, int) override {}
  void Close(v1::GenerateResponse last, const absl::Status& status) override {
    generated_ = last.usage().generated_tokens();
    status_ = status;
    done_.Notify();
  }
  bool cancelled() const override { return false; }
  int pending_tokens() const override { return 0; }
  absl::Status Wait() {
    done_.WaitForNotification();
    return status_;
  }
  int generated() const { return generated_; }

 private:
  absl::Notification done_;
  absl::Status status_;  // written before Notify, read after
  int generated_ = 0;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const ModelVersion>> ModelVersion::Create(
    std::string name, int64_t version, std::unique_ptr<InferenceEngine> engine, Source source,
    const SchedulerOptions& options, const StateKeyRing* state_keys,
    const ObserverFactory& observer_for) {
  if (name.empty()) return absl::InvalidArgumentError("a model name must not be empty");
  if (version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", name, "': version ", version, " is not a positive integer"));
  }
  std::shared_ptr<ModelVersion> v(new ModelVersion());
  v->name_ = std::move(name);
  v->version_ = version;
  v->source_ = std::move(source);
  ASSIGN_OR_RETURN(v->tokenizer_, Tokenizer::Create(engine->config().tokenizer));
  v->info_ = Describe(v->name_, version, *engine, std::min(options.max_batch, engine->max_batch()));
  std::string fingerprint = v->source_.fingerprint.empty()
                                ? ConfigFingerprint(engine->config())
                                : v->source_.fingerprint;
  v->state_codec_ = std::make_unique<ModelStateCodec>(
      StateModel::For(v->name_, std::move(fingerprint), engine->config()), state_keys);
  SchedulerObserver* observer = observer_for ? observer_for(v->info_) : nullptr;
  ASSIGN_OR_RETURN(v->scheduler_, ModelScheduler::Create(v->name_, std::move(engine),
                                                         v->tokenizer_.get(), options, observer));
  return v;
}

ModelVersion::~ModelVersion() {
  if (scheduler_ != nullptr) {
    scheduler_->Stop(absl::UnavailableError(
        absl::StrCat("model '", identity(), "' was unloaded before the request finished")));
  }
}

std::string ModelVersion::identity() const { return absl::StrCat(name_, "/", version_); }

absl::Status WarmUp(ModelScheduler* scheduler, const std::string& what) {
  WarmUpSink sink;
  auto job = std::make_unique<GenerationJob>();
  job->spec.request_id = "warm-up";
  job->spec.prompt = {0};
  job->spec.max_tokens = 4;
  job->spec.use_prefix_cache = false;  // metrics count clients' requests only
  job->spec.sampling.temperature = 0.0f;
  job->sink = &sink;
  RETURN_IF_ERROR(scheduler->SubmitGeneration(std::move(job)));
  if (absl::Status s = sink.Wait(); !s.ok() || sink.generated() != 4) {
    return absl::InternalError(
        absl::StrCat("warm-up generation on model '", what, "' failed: ", s.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace lstmserve
