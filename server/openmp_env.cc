#include "server/openmp_env.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace lstmserve {

void PassiveOpenMpWaits(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/1) != 0) return;
  execv("/proc/self/exe", argv);
  // Still here: the exec failed. Go on with OpenMP's default waits.
  std::cerr << "lstmserve: warning: could not re-execute with OMP_WAIT_POLICY=passive ("
            << std::strerror(errno) << "); OpenMP threads spin between steps\n";
}

}  // namespace lstmserve
