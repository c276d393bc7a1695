// LogLevel: the severity of a request log line, and its names ("debug",
// "info", "warning", "error") as written in the log and given to --log_level.
// Pure functions; thread-safe.
#ifndef LSTMSERVE_SERVER_LOG_LEVEL_H_
#define LSTMSERVE_SERVER_LOG_LEVEL_H_

#include <string>

namespace lstmserve {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// "debug", "info", "warning" or "error".
const char* LogLevelName(LogLevel level);

// The level named `name` (as LogLevelName writes it) into *out; false (and
// *out unchanged) for any other name.
bool ParseLogLevel(const std::string& name, LogLevel* out);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_LOG_LEVEL_H_
