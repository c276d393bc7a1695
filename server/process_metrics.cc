#include "server/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace lstmserve {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces).
struct Stat {
  double utime_ticks = 0;      // field 14
  double stime_ticks = 0;      // field 15
  double starttime_ticks = 0;  // field 22, since boot
  double vsize_bytes = 0;      // field 23
  double rss_pages = 0;        // field 24
  bool ok = false;
};

Stat ReadStat() {
  Stat s;
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return s;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream fields(line.substr(close + 2));
  std::string f;
  // Field 3 (state) is the first after ')'.
  for (int i = 3; i <= 24 && fields >> f; ++i) {
    if (i == 14) s.utime_ticks = std::stod(f);
    if (i == 15) s.stime_ticks = std::stod(f);
    if (i == 22) s.starttime_ticks = std::stod(f);
    if (i == 23) s.vsize_bytes = std::stod(f);
    if (i == 24) {
      s.rss_pages = std::stod(f);
      s.ok = true;
    }
  }
  return s;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(m);
  return f;
}

}  // namespace

ProcessMetrics::ProcessMetrics() : start_time_seconds_(0) {
  const Stat s = ReadStat();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (s.ok && ticks > 0) start_time_seconds_ = BootTimeSeconds() + s.starttime_ticks / ticks;
}

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  using prometheus::MetricType;
  const Stat s = ReadStat();
  if (!s.ok) return {};
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  return {
      Family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
             MetricType::Counter, (s.utime_ticks + s.stime_ticks) / ticks),
      Family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
             s.rss_pages * page),
      Family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
             s.vsize_bytes),
      Family("process_start_time_seconds", "Start time of the process since the Unix epoch.",
             MetricType::Gauge, start_time_seconds_),
      Family("process_open_fds", "Open file descriptors.", MetricType::Gauge, OpenFds()),
  };
}

}  // namespace lstmserve
