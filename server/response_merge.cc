#include "server/response_merge.h"

#include <utility>

namespace lstmserve {

void MergeResponse(v1::GenerateResponse from, v1::GenerateResponse* into) {
  into->mutable_text()->append(from.text());
  for (auto& t : *from.mutable_tokens()) *into->add_tokens() = std::move(t);
  if (from.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    into->set_finish_reason(from.finish_reason());
  }
  if (from.has_usage()) *into->mutable_usage() = std::move(*from.mutable_usage());
  if (from.seed() != 0) into->set_seed(from.seed());
  if (!from.state().empty()) into->set_state(std::move(*from.mutable_state()));
}

}  // namespace lstmserve
