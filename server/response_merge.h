// MergeResponse: appends one Generate message to another, so that output
// held back (a stream interval) or not yet written (a busy stream) goes out
// as one message that says the same as the two. Plain function.
#ifndef LSTMSERVE_SERVER_RESPONSE_MERGE_H_
#define LSTMSERVE_SERVER_RESPONSE_MERGE_H_

#include "lstmserve/v1/lstmserve.pb.h"

namespace lstmserve {

// Appends `from` to `into`: text concatenates, tokens append, the final
// fields (set only on the last message: finish_reason, usage, seed, state)
// are taken over when `from` has them. request_id and model_version stay.
void MergeResponse(v1::GenerateResponse from, v1::GenerateResponse* into);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_RESPONSE_MERGE_H_
