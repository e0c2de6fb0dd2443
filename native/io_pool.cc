#include "io_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>

#include "convert.h"

namespace devmapper {

namespace {

// The kernel's id of the calling thread (gettid(), a glibc 2.30 wrapper).
pid_t threadId() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Named, so that a thread listing (/proc/self/task/*/comm, top -H) tells them apart
// (prctl: pthread_setname_np is versioned GLIBC_2.34 when built on a newer glibc). Returns the
// process's nice value (the main thread's: the process id names it), or kNoNice when unknown.
constexpr int kNoNice = 100;

int prepareThread() {
  prctl(PR_SET_NAME, IoPool::kThreadName, 0, 0, 0);
  errno = 0;
  int base = getpriority(PRIO_PROCESS, static_cast<id_t>(getpid()));
  return base == -1 && errno != 0 ? kNoNice : base;
}

// Sets the calling thread's nice value: on Linux a thread has one of its own (setpriority of
// its thread id), `base` (the process's) or kNice above it, never above 19. A lower priority
// than the process's other threads lets Node's threadpool and the JavaScript thread take the
// CPU first when they wake while a queue of DM calls keeps a worker busy (on one CPU, an fs
// call would otherwise wait for a time slice behind it). Raising one's own nice value needs
// no privilege; lowering it back needs CAP_SYS_NICE (root, which DM ioctls need anyway, has
// it) or an RLIMIT_NICE that allows it: where it fails the thread stays niced, which only
// costs it speed.
void setNice(int base, bool niced) {
  if (base == kNoNice) return;
  int nice = niced ? std::min(base + IoPool::kNice, 19) : base;
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(threadId()), nice);
}

// system_clock: wait_for's steady clock needs pthread_cond_clockwait (glibc 2.30, versioned
// 2.34), and the prebuild supports glibc 2.28. A clock step only moves a wait's end.
std::chrono::system_clock::time_point after(std::chrono::milliseconds ms) {
  return std::chrono::system_clock::now() + ms;
}

// Waits on `cv` without a timeout until `ready()`. On the pthread condition itself:
// std::condition_variable::wait is versioned GLIBCXX_3.4.30 in newer libstdc++ (gcc 12), and
// the prebuild supports the libstdc++ of gcc 8. notify_one/notify_all signal the same condition.
template <typename Ready>
void waitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lk, Ready ready) {
  while (!ready()) pthread_cond_wait(cv.native_handle(), lk.mutex()->native_handle());
}

// Whether a thread of this process is waiting in the kernel (a blocking ioctl: state S or D)
// rather than runnable and only waiting for a CPU (R), where another thread would not help.
// Unknown (no /proc) counts as waiting.
bool waitingInKernel(pid_t tid) {
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  // "tid (comm) S ...": the comm may hold anything, the state follows its last ')'.
  const char* end = std::strrchr(buf, ')');
  if (end == nullptr || end[1] != ' ') return true;
  return end[2] != 'R';
}

}  // namespace

uv_handle_t* IoPool::handle(Kick* kick) { return reinterpret_cast<uv_handle_t*>(kick->handle); }

std::string IoPool::orderKey(const dm::Request& req) {
  switch (req.cmd) {
    case dm::kCmdVersion:
    case dm::kCmdRemoveAll:
    case dm::kCmdListDevices:
    case dm::kCmdListVersions:
    case dm::kCmdArmPoll:
    case dm::kCmdGetTargetVersion:  // its name field names a target type
      return std::string();
    default:
      break;
  }
  if (!req.name.empty()) return "n:" + req.name;
  if (!req.uuid.empty()) return "u:" + req.uuid;
  if (req.dev != 0) return "d:" + std::to_string(req.dev);
  return std::string();
}

void IoPool::submit(Napi::Env env, uint64_t id, int fd, dm::SizeHints* hints,
                    dm::AnswerPool* answers, dm::Request req) {
  if (!context_) {
    env_ = env;
    context_ = std::make_unique<Napi::AsyncContext>(env, "devmapper:io");
  }
  if (kick_ == nullptr) startKick(env);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw std::system_error(ECANCELED, std::generic_category());
    reapLocked();
    // A worker always, and the supervisor: without them nothing would ever run.
    if (!supervisor_.joinable()) supervisor_ = std::thread([this] { supervise(); });
    if (workersLocked() == 0) startWorkerLocked();
  }
  std::string key = orderKey(req);
  bool barrier = req.cmd == dm::kCmdRemoveAll;
  submitted_.push_back(Job{id, fd, hints, answers, std::move(req), std::move(key), barrier});
  // The first request of this run of JavaScript: hand them over before the loop waits.
  if (submitted_.size() == 1) uv_prepare_start(kick_->handle, OnPrepare);
}

void IoPool::ref(Napi::Env, bool keepAlive) {
  if (kick_ == nullptr) return;
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(kick_->async);
  if (keepAlive)
    uv_ref(h);
  else
    uv_unref(h);
}

void IoPool::startKick(Napi::Env env) {
  struct uv_loop_s* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    throw Napi::Error::New(env, "devmapper: cannot reach the event loop");
  void* prepare = std::malloc(uv_handle_size(kUvPrepare));
  void* async = std::malloc(uv_handle_size(kUvAsync));
  if (prepare == nullptr || async == nullptr) {
    std::free(prepare);
    std::free(async);
    throw std::bad_alloc();
  }
  auto* kick = new Kick();
  kick->handle = static_cast<uv_prepare_t*>(prepare);
  kick->async = static_cast<uv_async_t*>(async);
  uv_prepare_init(loop, kick->handle);
  uv_async_init(loop, kick->async, OnAnswers);
  kick->open = 2;
  uv_handle_set_data(handle(kick), kick);
  uv_handle_set_data(reinterpret_cast<uv_handle_t*>(kick->async), kick);
  kick->pool = this;
  // Never what keeps the loop alive: the pending answers do (ref()).
  uv_unref(handle(kick));
  uv_unref(reinterpret_cast<uv_handle_t*>(kick->async));
  if (napi_add_async_cleanup_hook(env, OnTeardown, kick, &kick->hook) != napi_ok) kick->hook = nullptr;
  kick_ = kick;
  std::lock_guard<std::mutex> lk(signalMu_);
  signal_ = kick->async;
}

void IoPool::closeHandles(Kick* kick) {
  if (kick->closing) return;
  kick->closing = true;
  uv_close(handle(kick), OnKickClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(kick->async), OnKickClosed);
}

void IoPool::closeKick() {
  Kick* kick = kick_;
  if (kick == nullptr) return;
  kick_ = nullptr;
  kick->pool = nullptr;
  {
    std::lock_guard<std::mutex> lk(signalMu_);
    signal_ = nullptr;
  }
  closeHandles(kick);
}

void IoPool::OnPrepare(uv_prepare_t* prepare) {
  auto* kick = static_cast<Kick*>(uv_handle_get_data(reinterpret_cast<uv_handle_t*>(prepare)));
  uv_prepare_stop(prepare);
  if (kick->pool != nullptr) kick->pool->flushSubmitted();
}

void IoPool::OnAnswers(uv_async_t* async) {
  auto* kick = static_cast<Kick*>(uv_handle_get_data(reinterpret_cast<uv_handle_t*>(async)));
  if (kick->pool != nullptr) kick->pool->deliverSome();
}

void IoPool::OnKickClosed(uv_handle_t* closed) {
  auto* kick = static_cast<Kick*>(uv_handle_get_data(closed));
  if (--kick->open > 0) return;
  // Lets the environment's teardown go on, if it waits for these handles.
  if (kick->hook != nullptr) napi_remove_async_cleanup_hook(kick->hook);
  std::free(kick->handle);
  std::free(kick->async);
  delete kick;
}

void IoPool::OnTeardown(napi_async_cleanup_hook_handle, void* arg) {
  // The environment goes (a worker terminated, the process ending): its loop must not close
  // with the handles open, and no thread may signal one that is closing. The Control's own
  // cleanup hook stops the pool's threads.
  auto* kick = static_cast<Kick*>(arg);
  if (IoPool* pool = kick->pool) {
    pool->kick_ = nullptr;
    kick->pool = nullptr;
    std::lock_guard<std::mutex> lk(pool->signalMu_);
    pool->signal_ = nullptr;
  }
  closeHandles(kick);
}

void IoPool::flushSubmitted() {
  if (submitted_.empty()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (Job& job : submitted_) queue_.push_back(std::move(job));
    // The supervisor looks only when requests may wait behind busy workers: when every
    // worker is in a request now. A worker between two requests takes these itself, and the
    // one that starts a request while others could start arms it then (work()).
    if (running_ >= workersLocked()) armLocked();
  }
  submitted_.clear();
  // One wake-up for the whole run's requests: one worker takes them one after another.
  cv_.notify_one();
}

std::deque<IoPool::Job>::iterator IoPool::nextLocked() {
  if (barrierRunning_) return queue_.end();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    // A barrier starts alone, once everything before it has finished; nothing passes it.
    if (it->barrier) return it == queue_.begin() && running_ == 0 ? it : queue_.end();
    // The first request whose device has no request running: an earlier request naming it
    // would have been picked first.
    if (it->key.empty() || runningKeys_.count(it->key) == 0) return it;
  }
  return queue_.end();
}

void IoPool::startWorkerLocked() {
  std::thread t([this] { work(); });
  starting_++;
  std::thread::id tid = t.get_id();
  threads_.emplace(tid, std::move(t));
}

void IoPool::sendAnswers(std::unique_lock<std::mutex>& lk) {
  scheduled_ = true;
  // Outside the lock: the JavaScript thread, woken by it, may run at once and take the batch.
  lk.unlock();
  signalAnswers();
  lk.lock();
}

void IoPool::signalAnswers() {
  std::lock_guard<std::mutex> lk(signalMu_);
  // Gone with the environment: nothing is delivered any more.
  if (signal_ != nullptr) uv_async_send(signal_);
}

void IoPool::armLocked() {
  if (armed_) return;
  armed_ = true;
  svCv_.notify_one();
}

bool IoPool::watchLocked() const { return !queue_.empty() || (!done_.empty() && !scheduled_); }

void IoPool::reapLocked() {
  for (std::thread::id tid : exited_) {
    auto it = threads_.find(tid);
    if (it == threads_.end()) continue;
    // It has left work() and only returns now: joining takes no time.
    if (it->second.joinable()) it->second.join();
    threads_.erase(it);
  }
  exited_.clear();
}

void IoPool::work() {
  int base = prepareThread();
  // A worker the supervisor started inherits its nice value: it starts at the process's.
  setNice(base, false);
  bool niced = false;
  // Requests this worker runs niced yet, since the last one with a queue behind it.
  size_t nicedFor = 0;
  // Requests run niced since this worker last yielded the CPU.
  size_t sinceYield = 0;
  pid_t tid = threadId();
  // This thread's ioctl buffer, reused from request to request.
  dm::Buffer scratch;
  std::unique_lock<std::mutex> lk(mu_);
  starting_--;
  auto ready = [this] { return stopping_ || nextLocked() != queue_.end(); };
  for (;;) {
    auto it = queue_.end();
    while (!stopping_ && (it = nextLocked()) == queue_.end()) {
      // Nothing this thread may start: hand back the answers ready, then wait.
      if (!done_.empty() && !scheduled_) {
        sendAnswers(lk);
        continue;
      }
      idle_++;
      bool woken = true;
      if (workersLocked() > 1) {
        woken = cv_.wait_until(lk, after(kIdle), ready);
      } else {
        // The last worker stays for the next request, asleep until then.
        waitUntil(cv_, lk, ready);
      }
      idle_--;
      if (!woken && workersLocked() > 1) {
        exited_.push_back(std::this_thread::get_id());
        return;
      }
    }
    if (stopping_) return;
    Job job = std::move(*it);
    queue_.erase(it);
    // Niced from the moment kNiceFrom requests wait behind this one until kNiceLinger
    // requests have run without such a queue: bursts one after another cost two system calls
    // in all, calls awaited one at a time none.
    if (queue_.size() >= kNiceFrom) nicedFor = kNiceLinger;
    bool nice = nicedFor > 0;
    if (nicedFor > 0) nicedFor--;
    running_++;
    if (!job.key.empty()) runningKeys_.insert(job.key);
    if (job.barrier) barrierRunning_ = true;
    busy_.push_back(tid);
    // Answers held back, or requests that could start, while this runs: the supervisor hands
    // the answers over, and starts another worker, if it takes long.
    if ((!done_.empty() && !scheduled_) || nextLocked() != queue_.end()) armLocked();
    lk.unlock();
    if (nice != niced) {
      setNice(base, nice);
      niced = nice;
    }
    // Niced, with this request to run after kYieldEvery others: whatever else is runnable
    // (Node's threadpool, the JavaScript thread) runs first.
    if (!nice) {
      sinceYield = 0;
    } else if (++sinceYield > kYieldEvery) {
      sinceYield = 1;
      sched_yield();
    }
    Done done;
    done.id = job.id;
    done.cmd = job.req.cmd;
    done.outcome = dm::run(job.fd, job.req, *job.hints, scratch, dm::systemIoctl, nullptr, job.answers);
    lk.lock();
    running_--;
    if (!job.key.empty()) runningKeys_.erase(job.key);
    if (job.barrier) barrierRunning_ = false;
    busy_.erase(std::find(busy_.begin(), busy_.end(), tid));
    progress_++;
    done_.push_back(std::move(done));
  }
}

void IoPool::supervise() {
  // Niced always: it wakes only to look, and the workers it starts take their own.
  setNice(prepareThread(), true);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    // Asleep, without a timeout, while nothing waits.
    waitUntil(svCv_, lk, [this] { return stopping_ || armed_; });
    if (stopping_) return;
    uint64_t seen = progress_;
    int quiet = 0;  // looks in a row that found nothing waiting
    for (;;) {
      svCv_.wait_until(lk, after(kStall), [this] { return stopping_; });
      if (stopping_) return;
      // Answers a worker has held since the last look (it runs a long request) go now.
      if (!done_.empty() && !scheduled_) {
        if (held_) {
          sendAnswers(lk);
          if (stopping_) return;
        } else {
          held_ = true;
        }
      }
      if (progress_ == seen && nextLocked() != queue_.end()) {
        // Nothing finished for a whole interval, and a request could start.
        if (idle_ > 0) {
          cv_.notify_one();
        } else if (starting_ == 0 && workersLocked() < kMaxThreads && !busy_.empty()) {
          // (A thread that is starting takes the request: thread creation may take longer
          // than an interval.)
          // Stuck only if every busy worker waits in the kernel: one that waits for a CPU
          // (a busy machine, a single CPU) is slow, and another thread would only add to it.
          std::vector<pid_t> busy = busy_;
          uint64_t before = progress_;
          lk.unlock();
          bool stuck = true;
          for (pid_t tid : busy) stuck = stuck && waitingInKernel(tid);
          lk.lock();
          if (stopping_) return;
          if (stuck && progress_ == before && idle_ == 0 && starting_ == 0 && nextLocked() != queue_.end()) {
            reapLocked();
            try {
              startWorkerLocked();
            } catch (const std::system_error&) {
              // No thread now: the next interval tries again.
            }
          }
        }
      }
      seen = progress_;
      // Asleep again after two quiet looks (not one: calls that come in a steady stream of
      // short bursts would wake it for each).
      quiet = watchLocked() ? 0 : quiet + 1;
      if (quiet == 2) break;
    }
    armed_ = false;
  }
}

void IoPool::deliverSome() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (Done& d : done_) inbox_.push_back(std::move(d));
    done_.clear();
    scheduled_ = false;
    held_ = false;
  }
  if (inbox_.empty() || env_ == nullptr) return;
  size_t n = std::min(inbox_.size(), kDeliverAtOnce);
  std::vector<Done> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; i++) {
    batch.push_back(std::move(inbox_.front()));
    inbox_.pop_front();
  }
  // The rest on the next turn of the loop, after what else is ready by then.
  if (!inbox_.empty() && kick_ != nullptr) uv_async_send(kick_->async);
  Napi::Env env(env_);
  guarded([&] {
    Napi::HandleScope handles(env);
    // Closing the scope runs the promise reactions of this group (and process.nextTick's).
    Napi::CallbackScope scope(env, *context_);
    deliver_(env, owner_, batch);
  });
}

void IoPool::stop() {
  closeKick();
  submitted_.clear();
  std::map<std::thread::id, std::thread> threads;
  std::thread supervisor;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ && threads_.empty() && !supervisor_.joinable()) return;
    stopping_ = true;
    threads.swap(threads_);
    exited_.clear();
    supervisor = std::move(supervisor_);
  }
  cv_.notify_all();
  svCv_.notify_all();
  for (auto& [tid, t] : threads) {
    (void)tid;
    if (t.joinable()) t.join();
  }
  if (supervisor.joinable()) supervisor.join();
  if (context_) guarded([&] { context_.reset(); });
  inbox_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  queue_.clear();
  done_.clear();
}

}  // namespace devmapper
