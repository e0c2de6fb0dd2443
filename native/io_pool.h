// The threads a Control's asynchronous ioctls run on: the addon's own, never Node's
// threadpool (so DM calls never delay fs, dns or crypto work).
//
// Few threads, few wake-ups (a thread switch is the dearest thing there is on a small or
// virtual machine, far dearer than a DM ioctl):
//  - The requests made in one synchronous run of JavaScript reach the workers together: they
//    are held on the JavaScript thread until the event loop is about to wait (a uv_prepare
//    handle), then queued with one wake-up.
//  - One worker runs them one after another, and hands its answers back when it has nothing
//    left to run: one wake-up of the JavaScript thread (a libuv async handle, signalled with
//    no lock held, so that the JavaScript thread, woken at once, never waits for the worker)
//    carries every answer ready by then. They are settled kDeliverAtOnce at a time, each
//    group in a callback scope of its own (its promise reactions run before the next), with
//    the event loop let run between groups: fs, timers and other I/O wait for at most one
//    group's JavaScript, not for a whole burst's.
//  - The pool grows only when it is stuck: a supervisor thread, asleep unless requests wait
//    while every worker is in a request (or a worker starts one while others could start),
//    looks every kStall while some do; when no request finished meanwhile and one could
//    start, it wakes an idle worker, or starts one (up to kMaxThreads) if every busy worker
//    waits in the kernel (a suspend that flushes for seconds, any blocking ioctl) rather than
//    for a CPU. On the same looks it hands back the answers that a worker busy with a long
//    request has held since the previous look (so for at most about 2 * kStall). Idle
//    workers end after kIdle; the last one stays, asleep without a timeout.
//  - A worker runs niced (kNice above the process) while queues wait behind its requests
//    (from kNiceFrom waiting, until kNiceLinger requests ran without): when Node's threadpool or the JavaScript
//    thread wakes while a worker has a queue of ioctls, it gets the CPU first. With fewer
//    waiting it runs at the process's own priority: a call awaited at a time is answered
//    sooner so (on one CPU, a niced worker gives way to the JavaScript thread it wakes, and
//    the switches back cost more than the ioctl). The supervisor runs niced.
//  - A niced worker also gives the CPU away (sched_yield) every kYieldEvery requests. Being
//    niced decides only who wins at a wake-up: a thread that became runnable while the
//    JavaScript thread ran (the fs call it has just made) may find the worker picked when the
//    JavaScript thread sleeps, and then wait for the worker's whole queue or the next timer
//    tick (10 ms at HZ=100) for the CPU. The yield bounds that wait to kYieldEvery ioctls, at
//    one system call per kYieldEvery requests, and none for calls awaited one at a time.
//  - Order: a request that names a device never starts while an earlier request naming it
//    the same way (same name, same uuid, or same device number) is queued ahead of it or
//    running. Requests naming no device (VERSION, LIST_DEVICES, LIST_VERSIONS,
//    GET_TARGET_VERSION, DEV_ARM_POLL) are not ordered; REMOVE_ALL waits for every earlier
//    request and holds up every later one.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dm_ioctl.h"
#include "uv_loop.h"

namespace devmapper {

class IoPool {
 public:
  static constexpr size_t kMaxThreads = 64;
  static constexpr std::chrono::milliseconds kIdle{2000};
  static constexpr std::chrono::milliseconds kStall{3};
  static constexpr const char* kThreadName = "devmapper-io";
  // How much nicer than the process a worker with a queue runs (see setNice in io_pool.cc).
  static constexpr int kNice = 10;
  // Requests waiting behind the one a worker starts that make it run niced, and for how many
  // requests after the last such one it stays so.
  static constexpr size_t kNiceFrom = 4;
  static constexpr size_t kNiceLinger = 64;
  // Requests a niced worker runs between two yields of the CPU (see above).
  static constexpr size_t kYieldEvery = 32;
  // Answers settled per turn of the event loop (see above).
  static constexpr size_t kDeliverAtOnce = 16;

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

  // Queues a request (JavaScript thread); the workers see it once this run of JavaScript is
  // over. Throws std::system_error when the pool has no thread and none can start; the request
  // is then not queued.
  // The answer's memory comes from `answers` when it has some (see dm::AnswerPool).
  void submit(Napi::Env env, uint64_t id, int fd, dm::SizeHints* hints, dm::AnswerPool* answers,
              dm::Request req);
  // Whether the pending answers keep the event loop alive (JavaScript thread).
  void ref(Napi::Env env, bool keepAlive);
  // Ends every thread (a request in progress finishes its ioctl first) and lets go of the
  // thread-safe function and the loop handle (JavaScript thread). Requests that have not
  // started are dropped: call it only when nothing is pending, or when the environment goes.
  void stop();

  // The ordering key of a request: "n:" name, else "u:" uuid, else "d:" device number, as the
  // request names its device; empty for a request that names none.
  static std::string orderKey(const dm::Request& req);

 private:
  struct Job {
    uint64_t id;
    int fd;
    dm::SizeHints* hints;
    dm::AnswerPool* answers;
    dm::Request req;
    std::string key;
    bool barrier;  // REMOVE_ALL
  };
  // The loop handles: one that hands a run of JavaScript's requests over, one that brings the
  // answers back. Freed by their close callbacks, which may run after the pool is gone; an
  // async cleanup hook makes the environment's teardown wait for them (the loop must not
  // close with them open).
  struct Kick {
    uv_prepare_t* handle = nullptr;  // uv_handle_size(UV_PREPARE) bytes of malloc
    uv_async_t* async = nullptr;     // uv_handle_size(UV_ASYNC) bytes of malloc
    IoPool* pool = nullptr;
    napi_async_cleanup_hook_handle hook = nullptr;
    int open = 0;  // handles not yet closed
    bool closing = false;
  };

  static uv_handle_t* handle(Kick* kick);
  void startKick(Napi::Env env);
  void closeKick();
  static void closeHandles(Kick* kick);
  static void OnPrepare(uv_prepare_t* handle);
  static void OnAnswers(uv_async_t* handle);
  static void OnKickClosed(uv_handle_t* handle);
  static void OnTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  void flushSubmitted();
  // Takes the answers the workers have made and settles up to kDeliverAtOnce of them
  // (JavaScript thread); comes back on the next turn of the loop for the rest.
  void deliverSome();
  // Wakes the JavaScript thread for the answers (any thread; no lock of the pool held).
  void signalAnswers();

  void work();
  void supervise();
  // With mu_ held:
  std::deque<Job>::iterator nextLocked();
  void startWorkerLocked();
  // Sends the answers ready to the JavaScript thread (mu_ held on entry and on return).
  void sendAnswers(std::unique_lock<std::mutex>& lk);
  void armLocked();
  bool watchLocked() const;
  size_t workersLocked() const { return threads_.size() - exited_.size(); }
  void reapLocked();

  void* owner_;
  Deliver deliver_;
  napi_env env_ = nullptr;
  // The async context the answers are settled in (async_hooks see one resource for the pool).
  std::unique_ptr<Napi::AsyncContext> context_;
  // JavaScript thread only: the requests of the current run of JavaScript, and the answers
  // taken from the workers and not yet settled.
  std::vector<Job> submitted_;
  std::deque<Done> inbox_;
  Kick* kick_ = nullptr;
  // Guards `signal_` (the async handle, until it closes): the threads that signal hold it,
  // never the JavaScript thread's delivery, so a woken JavaScript thread never waits on it.
  std::mutex signalMu_;
  uv_async_t* signal_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;    // workers wait here for a request
  std::condition_variable svCv_;  // the supervisor waits here
  std::deque<Job> queue_;
  std::set<std::string> runningKeys_;
  size_t running_ = 0;
  bool barrierRunning_ = false;
  uint64_t progress_ = 0;  // requests finished
  std::vector<pid_t> busy_;  // the kernel thread ids of the workers running a request
  std::vector<Done> done_;
  bool scheduled_ = false;  // a call onto the JavaScript thread is on its way
  bool held_ = false;       // the supervisor saw answers waiting, none delivered since
  bool stopping_ = false;
  bool armed_ = false;  // the supervisor is looking (requests wait or answers are held)
  size_t idle_ = 0;
  size_t starting_ = 0;  // threads made that have not reached their loop yet
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread::id> exited_;
  std::thread supervisor_;
};

}  // namespace devmapper
