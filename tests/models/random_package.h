// Test alias for models/random_package.h (seeded random in-memory packages).
#ifndef LSTMSERVE_TESTS_MODELS_RANDOM_PACKAGE_H_
#define LSTMSERVE_TESTS_MODELS_RANDOM_PACKAGE_H_

#include "models/random_package.h"

namespace lstmserve::testing {
using ::lstmserve::RandomPackage;
using ::lstmserve::RandomPackageShape;
}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_MODELS_RANDOM_PACKAGE_H_
