// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Abseil 20220623 ships no status_macros.h.
#ifndef LSTMSERVE_BASE_STATUS_MACROS_H_
#define LSTMSERVE_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LSTMSERVE_CONCAT_INNER_(a, b) a##b
#define LSTMSERVE_CONCAT_(a, b) LSTMSERVE_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the caller if not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status lstmserve_status_ = (expr);         \
    if (!lstmserve_status_.ok()) return lstmserve_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on
// error returns its status from the caller, else moves the value into `lhs`
// (which may be a declaration such as `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  LSTMSERVE_ASSIGN_OR_RETURN_IMPL_(LSTMSERVE_CONCAT_(statusor_, __LINE__), lhs, expr)
#define LSTMSERVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = std::move(statusor).value()

#endif  // LSTMSERVE_BASE_STATUS_MACROS_H_
