// PassiveOpenMpWaits: lstmserve's OpenMP threads sleep between parallel
// regions instead of spinning, unless the environment says otherwise.
//
// Why: a serving process shares its cores with its own gRPC, write and
// scheduler threads (and often with its clients). libgomp's default lets a
// team's threads spin after each region, and the LSTM step runs several
// regions per token, so on a machine without spare cores the spinning
// threads take the cores that deliver the tokens. Measured on two pinned
// cores of a quiet 16-core machine (server/README.md, bench/serving_e2e.sh):
// 64 streams end to end 0.60 / 0.68 (stream interval 1 / 4) of the engine's
// batch-64 rate with spinning, 0.67 / 0.86 with passive waits.
//
// libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main), so
// the only way to change it from inside is to run the program again with it
// set. Called first thing in main. Not thread-safe (no threads exist yet).
#ifndef LSTMSERVE_SERVER_OPENMP_ENV_H_
#define LSTMSERVE_SERVER_OPENMP_ENV_H_

namespace lstmserve {

// If OMP_WAIT_POLICY is unset: sets it to "passive" and re-executes this
// program (/proc/self/exe) with the same arguments (same pid). Returns only
// when the variable was already set (by the user, or by the first run), or
// when the re-exec failed (then waits stay OpenMP's default; a warning goes
// to stderr).
void PassiveOpenMpWaits(char** argv);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_OPENMP_ENV_H_
