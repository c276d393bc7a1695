// lstmserve (the binary, as a subprocess) with --model-repository: a storm
// of SIGHUPs while version directories are written in place, removed and
// published; the process keeps serving, every answer is its version's text,
// and the last published version ends up serving. Then SIGTERM drains (exit 0).
// Also: the binary runs with passive OpenMP waits unless told otherwise.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/repository_fixture.h"

extern char** environ;

namespace lstmserve::testing {
namespace {

// The server's port, read from its start-up line on stderr (0: not yet).
int PortFromLog(const std::string& log_path) {
  std::ifstream in(log_path);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::smatch match;
  static const std::regex kLine("serving [0-9]+ model\\(s\\) on port ([0-9]+)");
  return std::regex_search(log, match, kLine) ? std::stoi(match[1]) : 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Starts `args` (args[0]: the binary) with `envp`, its stderr into
// `log_path`. Returns its pid, 0 if it could not be started.
pid_t Spawn(std::vector<std::string> args, const std::string& log_path, char* const* envp) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDERR_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), envp) != 0) pid = 0;
  posix_spawn_file_actions_destroy(&files);
  return pid;
}

TEST(RepositorySignalTest, StormOfSighupsWhileFilesChange) {
  TestRepository repo;
  repo.Publish("m", 1);
  const std::string log_path = repo.path() + "/.server.log";
  std::vector<std::string> args = {LSTMSERVE_SERVER_BINARY,
                                   "--model-repository", repo.path(),
                                   "--repository-poll-interval", "0",
                                   "--engine", "reference",
                                   "--threads", "1",
                                   "--listen", "127.0.0.1:0",
                                   "--request-log", "none",
                                   "--drain-timeout", "10s"};
  const pid_t pid = Spawn(args, log_path, environ);
  ASSERT_NE(pid, 0) << "posix_spawn failed";

  int port = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while ((port = PortFromLog(log_path)) == 0 && absl::Now() < deadline) {
    ASSERT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "lstmserve exited:\n" << ReadFile(log_path);
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(port, 0) << ReadFile(log_path);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", port));

  constexpr int kLast = 5;
  std::map<int64_t, std::string> expected;
  for (int64_t v = 1; v <= kLast; ++v) expected[v] = ReferenceGreedy(VersionShape(v), "AB", 30);
  auto check = [&](int64_t want) {
    v1::GenerateRequest r = GreedyRequest("AB", 30);
    r.set_model("m");
    auto g = client.GenerateText(r);
    EXPECT_TRUE(g.ok()) << g.status();
    if (!g.ok()) return int64_t{0};
    const int64_t v = g->last.model_version();
    EXPECT_TRUE(expected.count(v)) << v;
    EXPECT_EQ(g->text, expected[v]) << "version " << v;
    if (want != 0) EXPECT_EQ(v, want);
    return v;
  };
  check(1);

  // The storm: SIGHUPs back to back while versions are written file by
  // file (scans see them half done), one truncated, one removed.
  for (int64_t v = 2; v < kLast; ++v) {
    if (v == 3) {
      repo.PublishBroken("m", v);
    } else {
      repo.WriteInPlace("m", v);
    }
    for (int i = 0; i < 50; ++i) ASSERT_EQ(kill(pid, SIGHUP), 0);
    if (v == 4) std::filesystem::remove_all(repo.VersionDir("m", v));
    for (int i = 0; i < 50; ++i) ASSERT_EQ(kill(pid, SIGHUP), 0);
    check(0);
    ASSERT_EQ(waitpid(pid, nullptr, WNOHANG), 0) << "lstmserve died:\n" << ReadFile(log_path);
  }
  repo.Publish("m", kLast);
  // Keep signalling until the new version serves (each SIGHUP asks for a
  // scan; a scan after the rename loads it).
  int64_t serving = 0;
  while ((serving = check(0)) != kLast && absl::Now() < deadline) {
    ASSERT_EQ(kill(pid, SIGHUP), 0);
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(serving, kLast) << ReadFile(log_path);
  auto models = client.ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->models_size(), 1);
  EXPECT_EQ(models->models(0).version(), kLast);

  const std::string log = ReadFile(log_path);
  EXPECT_NE(log.find(absl::StrCat("error: model version directory '", repo.VersionDir("m", 3),
                                  "' refused")),
            std::string::npos)
      << log;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << log;
}

// The value of OMP_WAIT_POLICY in the lstmserve started with `env` (extra
// NAME=VALUE entries over this process's environment minus
// OMP_WAIT_POLICY), read from /proc/PID/environ once it serves; "" when
// unset. The pid is the spawned one: the re-exec keeps it.
std::string ServerWaitPolicy(const std::vector<std::string>& env) {
  TestRepository repo;
  repo.Publish("m", 1);
  const std::string log_path = repo.path() + "/.server.log";
  std::vector<std::string> args = {LSTMSERVE_SERVER_BINARY, "--model-repository", repo.path(),
                                   "--engine", "reference", "--listen", "127.0.0.1:0",
                                   "--request-log", "none"};
  std::vector<std::string> env_strings = env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("OMP_WAIT_POLICY=", 0) != 0) env_strings.push_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = Spawn(args, log_path, envp.data());
  EXPECT_NE(pid, 0) << "posix_spawn failed";
  if (pid == 0) return "spawn failed";
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (PortFromLog(log_path) == 0 && absl::Now() < deadline &&
         waitpid(pid, nullptr, WNOHANG) == 0) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_NE(PortFromLog(log_path), 0) << ReadFile(log_path);
  const std::string environ_text = ReadFile(absl::StrCat("/proc/", pid, "/environ"));
  std::string policy;
  size_t start = 0;
  for (size_t end; (end = environ_text.find('\0', start)) != std::string::npos; start = end + 1) {
    const std::string entry = environ_text.substr(start, end - start);
    if (entry.rfind("OMP_WAIT_POLICY=", 0) == 0) policy = entry.substr(16);
  }
  kill(pid, SIGTERM);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n"
                                                             << ReadFile(log_path);
  return policy;
}

TEST(OpenMpWaitPolicyTest, PassiveUnlessTheEnvironmentSetsIt) {
  EXPECT_EQ(ServerWaitPolicy({}), "passive");
  EXPECT_EQ(ServerWaitPolicy({"OMP_WAIT_POLICY=active"}), "active");
}

}  // namespace
}  // namespace lstmserve::testing
