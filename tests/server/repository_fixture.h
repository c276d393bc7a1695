// Test helper for the versioned model repository: a repository directory
// with random model packages as versions, published atomically (written
// next to it, then renamed) or written in place, and the reference texts of
// each version. Header-only.
#ifndef LSTMSERVE_TESTS_SERVER_REPOSITORY_FIXTURE_H_
#define LSTMSERVE_TESTS_SERVER_REPOSITORY_FIXTURE_H_

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/models/package_writer.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {

// Version `version` of a model: the tiny shape with a seed of its own, so
// each version generates its own text.
inline RandomPackageShape VersionShape(int64_t version) {
  RandomPackageShape s = TinyShape();
  s.seed = 1000 + static_cast<uint64_t>(version);
  return s;
}

class TestRepository {
 public:
  const std::string& path() const { return dir_.path(); }
  std::string VersionDir(const std::string& model, int64_t version) const {
    return absl::StrCat(path(), "/", model, "/", version);
  }
  // Writes the package elsewhere in the repository's file system, then
  // renames it into place: a scan sees all of it or nothing.
  void Publish(const std::string& model, int64_t version,
               const RandomPackageShape& shape) const {
    const std::string staging = absl::StrCat(path(), "/", model, "/.staging-", version);
    WritePackage(SpecFromPackage(RandomPackage(shape)), staging);
    std::filesystem::rename(staging, VersionDir(model, version));
  }
  void Publish(const std::string& model, int64_t version) const {
    Publish(model, version, VersionShape(version));
  }
  // Publishes a version whose weights file is cut to half its size.
  void PublishBroken(const std::string& model, int64_t version) const {
    const std::string staging = absl::StrCat(path(), "/", model, "/.staging-", version);
    WritePackage(SpecFromPackage(RandomPackage(VersionShape(version))), staging);
    const std::string weights = absl::StrCat(staging, "/", kWeightsFileName);
    std::filesystem::resize_file(weights, std::filesystem::file_size(weights) / 2);
    std::filesystem::rename(staging, VersionDir(model, version));
  }
  // Writes the package file by file in place (a scan may see it half done).
  void WriteInPlace(const std::string& model, int64_t version) const {
    WritePackage(SpecFromPackage(RandomPackage(VersionShape(version))),
                 VersionDir(model, version));
  }
  // Cuts the version's weights file to half its size.
  void TruncateWeights(const std::string& model, int64_t version) const {
    const std::string weights = absl::StrCat(VersionDir(model, version), "/", kWeightsFileName);
    std::filesystem::resize_file(weights, std::filesystem::file_size(weights) / 2);
  }

 private:
  ScopedTempDir dir_;
};

// Server options for a repository at `directory`: reference engine, rescans
// only when asked (no poll).
inline ServerOptions RepoServerOptions(const std::string& directory) {
  ServerOptions o = TestOptions();
  o.repository.directory = directory;
  o.repository.poll_interval = absl::ZeroDuration();
  o.loading.kind = EngineKind::kReference;
  return o;
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_REPOSITORY_FIXTURE_H_
