#include "datapath/worker.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <string>

namespace dnsproxy::datapath {

Result<void> pin_current_thread(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (const int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0)
    return fail("cannot pin a worker to CPU ", std::to_string(cpu), ": ", std::strerror(err));
  return {};
}

}  // namespace dnsproxy::datapath
