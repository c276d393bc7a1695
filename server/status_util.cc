#include "server/status_util.h"

#include <string>

namespace lstmserve {

std::string BoundedStatusMessage(absl::string_view text) {
  std::string message(text);
  if (message.size() > kMaxStatusMessageBytes) {
    // Cut on a UTF-8 character boundary.
    size_t cut = kMaxStatusMessageBytes - 3;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message.resize(cut);
    message += "...";
  }
  return message;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      BoundedStatusMessage(status.message()));
}

}  // namespace lstmserve
