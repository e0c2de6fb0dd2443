// The threads a Control's asynchronous ioctls run on: the addon's own, never Node's
// threadpool (so DM calls never delay fs, dns or crypto work). The pool grows by a thread
// whenever a request would otherwise wait behind busy threads (a suspend that flushes for
// seconds holds up nothing else), up to kMaxThreads, and a thread idle for a while ends.
// Answers go back to JavaScript in batches: one call onto the JavaScript thread carries every
// answer that is ready by then.
#pragma once

#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "dm_ioctl.h"

namespace devmapper {

class IoPool {
 public:
  static constexpr size_t kMaxThreads = 64;
  static constexpr std::chrono::milliseconds kIdle{2000};
  static constexpr const char* kThreadName = "devmapper-io";

  struct Done {
    uint64_t id = 0;
    uint32_t cmd = 0;
    dm::Outcome outcome;
  };
  // Called on the JavaScript thread with a batch of answers.
  using Deliver = void (*)(Napi::Env env, void* owner, std::vector<Done>& batch);

  IoPool(void* owner, Deliver deliver) : owner_(owner), deliver_(deliver) {}
  ~IoPool() { stop(); }
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // Queues a request (JavaScript thread). Throws std::system_error when no thread can start
  // and none is idle; the request is then not queued.
  void submit(Napi::Env env, uint64_t id, int fd, dm::SizeHints* hints, dm::Request req);
  // Whether the pending answers keep the event loop alive (JavaScript thread).
  void ref(Napi::Env env, bool keepAlive);
  // Ends every thread (a request in progress finishes its ioctl first) and lets go of the
  // thread-safe function. Queued requests that have not started are dropped: call it only
  // when nothing is pending, or when the environment goes away.
  void stop();

 private:
  struct Job {
    uint64_t id;
    int fd;
    dm::SizeHints* hints;
    dm::Request req;
  };

  void work();
  void reapLocked();
  static void OnDone(Napi::Env env, Napi::Function, IoPool* pool);

  void* owner_;
  Deliver deliver_;
  Napi::ThreadSafeFunction tsfn_;
  bool hasTsfn_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<Done> done_;
  bool scheduled_ = false;  // a call onto the JavaScript thread is on its way
  bool stopping_ = false;
  size_t idle_ = 0;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread::id> exited_;
};

}  // namespace devmapper
