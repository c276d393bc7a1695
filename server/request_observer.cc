#include "server/request_observer.h"

#include "lstmserve/v1/lstmserve.pb.h"

namespace lstmserve {

const char* FinishReasonLabel(int finish_reason) {
  switch (finish_reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    case v1::FINISH_REASON_DEADLINE:
      return "deadline";
    case v1::FINISH_REASON_SHUTDOWN:
      return "shutdown";
    default:
      return "error";
  }
}

}  // namespace lstmserve
