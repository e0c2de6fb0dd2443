#include "io_pool.h"

#include <sys/prctl.h>

#include "convert.h"

namespace devmapper {

void IoPool::submit(Napi::Env env, uint64_t id, int fd, dm::SizeHints* hints, dm::Request req) {
  if (!hasTsfn_) {
    // Created unreferenced: an idle pool keeps nothing alive; ref() follows the pending work.
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), "devmapper:io", 0, 1);
    tsfn_.Unref(env);
    hasTsfn_ = true;
  }
  std::unique_lock<std::mutex> lk(mu_);
  reapLocked();
  queue_.push_back(Job{id, fd, hints, std::move(req)});
  // Every queued request has an idle thread to take it, or gets a new one.
  if (queue_.size() > idle_ && threads_.size() < kMaxThreads) {
    try {
      std::thread t([this] { work(); });
      std::thread::id tid = t.get_id();
      threads_.emplace(tid, std::move(t));
    } catch (const std::system_error&) {
      if (threads_.empty() || idle_ == 0) {
        queue_.pop_back();
        throw;
      }
      // Others are running: the request waits for one of them.
    }
  }
  lk.unlock();
  cv_.notify_one();
}

void IoPool::ref(Napi::Env env, bool keepAlive) {
  if (!hasTsfn_) return;
  if (keepAlive)
    tsfn_.Ref(env);
  else
    tsfn_.Unref(env);
}

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
  // Named, so that a thread listing (/proc/self/task/*/comm, top -H) tells them apart
  // (prctl: pthread_setname_np is versioned GLIBC_2.34 when built on a newer glibc).
  prctl(PR_SET_NAME, kThreadName, 0, 0, 0);
  // This thread's ioctl buffer, reused from request to request.
  dm::Buffer scratch;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      idle_++;
      // system_clock: wait_for's steady clock needs pthread_cond_clockwait (glibc 2.30,
      // versioned 2.34), and the prebuild supports glibc 2.28. A clock step only moves an
      // idle thread's end.
      bool woken = cv_.wait_until(lk, std::chrono::system_clock::now() + kIdle, [this] { return !queue_.empty() || stopping_; });
      idle_--;
      // An idle thread ends, but the last one stays for the next request.
      if (!woken && threads_.size() - exited_.size() > 1) {
        exited_.push_back(std::this_thread::get_id());
        return;
      }
    }
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    Done done;
    done.id = job.id;
    done.cmd = job.req.cmd;
    done.outcome = dm::run(job.fd, job.req, *job.hints, scratch);
    lk.lock();
    done_.push_back(std::move(done));
    if (!scheduled_) {
      scheduled_ = true;
      // On napi_closing the environment is going away: nothing is delivered any more.
      napi_status s = tsfn_.NonBlockingCall(this, OnDone);
      (void)s;
    }
  }
}

void IoPool::OnDone(Napi::Env env, Napi::Function, IoPool* pool) {
  std::vector<Done> batch;
  {
    std::lock_guard<std::mutex> lk(pool->mu_);
    batch.swap(pool->done_);
    pool->scheduled_ = false;
  }
  pool->deliver_(env, pool->owner_, batch);
}

void IoPool::stop() {
  std::map<std::thread::id, std::thread> threads;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    threads.swap(threads_);
    exited_.clear();
  }
  cv_.notify_all();
  for (auto& [tid, t] : threads) {
    (void)tid;
    if (t.joinable()) t.join();
  }
  if (hasTsfn_) {
    guarded([&] { tsfn_.Release(); });
    hasTsfn_ = false;
  }
  std::lock_guard<std::mutex> lk(mu_);
  queue_.clear();
  done_.clear();
}

}  // namespace devmapper
