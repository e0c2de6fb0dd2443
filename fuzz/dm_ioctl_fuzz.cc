// libFuzzer target over the plain C++ ioctl core (native/dm_ioctl.*), without Node-API.
// The first byte picks what the rest of the input is:
//   0: a kernel answer to unpack, for the command in the second byte
//   1: a request to check and pack (fields read from the input), then its packed form checked
//   2: answers of a fake ioctl to `run` (grow-and-retry, hints, flags), a chunk per call
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dm_ioctl.h"

namespace {

// Reads the input as a stream of small fields.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = (v << 8) | byte();
    return v;
  }
  uint64_t u64() { return (static_cast<uint64_t>(u32()) << 32) | u32(); }
  std::string string(size_t max) {
    size_t n = byte() % (max + 1);
    std::string s;
    for (size_t i = 0; i < n && at_ < size_; i++) s.push_back(static_cast<char>(data_[at_++]));
    return s;
  }
  const uint8_t* rest(size_t* n) {
    *n = size_ - at_;
    return data_ + at_;
  }
  bool done() const { return at_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// A string of the index: inside the answer, followed by its NUL, and ASCII when the result
// says all its strings are.
void checkString(const uint8_t* buf, size_t size, uint32_t at, uint32_t len, bool ascii) {
  if (static_cast<size_t>(at) + len >= size || buf[at + len] != 0) __builtin_trap();
  for (uint32_t i = 0; ascii && i < len; i++) {
    if (buf[at + i] & 0x80) __builtin_trap();
  }
}

// Every offset and length of an unpacked index lies inside the answer (what JavaScript reads).
void checkIndex(const dm::Result& r, size_t size, const uint8_t* buf) {
  if (r.index.size() != static_cast<size_t>(r.rows) * dm::kIndexWords) __builtin_trap();
  for (size_t i = 0; i < r.rows; i++) {
    const uint32_t* w = &r.index[i * dm::kIndexWords];
    if (r.payload == dm::Payload::Specs) {
      if (w[5] >= r.types.size()) __builtin_trap();
      checkString(buf, size, w[6], w[7], r.ascii);
    } else {
      checkString(buf, size, w[2], w[3], r.ascii);
      if (w[6] != 0) checkString(buf, size, w[6], w[7], r.ascii);
    }
  }
}

void unpackAnswer(Reader& in) {
  uint32_t cmd = in.byte() % dm::kCommandCount;
  size_t n = 0;
  const uint8_t* bytes = in.rest(&n);
  // An 8-aligned copy, as the ioctl buffer is.
  std::vector<uint64_t> words((n + 7) / 8 + 1, 0);
  std::memcpy(words.data(), bytes, n);
  dm::Result result;
  std::string why = dm::unpack(cmd, reinterpret_cast<const uint8_t*>(words.data()), n, &result);
  if (why.empty()) checkIndex(result, n, reinterpret_cast<const uint8_t*>(words.data()));
  // What a SECURE_DATA answer's destructor does: every byte that may hold a key is zero after.
  result.wipe();
  for (char c : result.data) {
    if (c != 0) __builtin_trap();
  }
}

dm::Request readRequest(Reader& in) {
  dm::Request req;
  req.cmd = in.byte() % (dm::kCommandCount + 2);  // a few out of range
  req.flags = in.u32();
  req.name = in.string(140);
  req.uuid = in.string(140);
  req.dev = in.u64();
  req.eventNr = in.u32();
  uint8_t rows = in.byte() % 8;
  for (uint8_t i = 0; i < rows; i++) {
    dm::TargetSpec t;
    t.start = in.u64();
    t.length = in.u64();
    t.type = in.string(20);
    t.params = in.string(200);
    req.targets.push_back(t);
  }
  req.hasData = in.byte() & 1;
  req.data = in.string(100);
  req.hasMessage = in.byte() & 1;
  req.sector = in.u64();
  req.message = in.string(100);
  req.repeatable = in.byte() & 1;
  return req;
}

void packRequest(Reader& in) {
  dm::Request req = readRequest(in);
  if (!dm::checkRequest(req).empty()) return;
  // With room for an answer after the request, as every call has: a reused buffer holds the
  // previous answer there, and all of it must be cleared (the kernel reads it back as the
  // text of a target whose status prints nothing).
  size_t size = dm::requestSize(req) + 8 * (in.byte() % 64);
  std::vector<uint64_t> words(size / 8 + 1, 0xa5a5a5a5a5a5a5a5ull);
  auto* buf = reinterpret_cast<uint8_t*>(words.data());
  dm::pack(req, buf, size);
  for (size_t i = dm::requestSize(req); i < size; i++) {
    if (buf[i] != 0) __builtin_trap();
  }
  uint32_t dataSize;
  std::memcpy(&dataSize, buf + 12, 4);
  if (dataSize != size) __builtin_trap();
  // Every input spec's `next` leads to the following spec, inside the buffer.
  if (req.cmd == 9) {
    size_t at = dm::kHeaderSize;
    for (size_t i = 0; i < req.targets.size(); i++) {
      if (at + dm::kSpecSize > size) __builtin_trap();
      uint32_t next;
      std::memcpy(&next, buf + at + 20, 4);
      if (next % 8 != 0 || at + next > size) __builtin_trap();
      at += next;
    }
  }
}

struct FakeKernel {
  Reader* in;
  int calls = 0;
};

int fakeIoctl(int, unsigned long, void* arg, void* context) {
  auto* k = static_cast<FakeKernel*>(context);
  if (++k->calls > 4 || k->in->done()) return 5;  // EIO: ends a run that would grow forever
  uint32_t size;
  std::memcpy(&size, static_cast<uint8_t*>(arg) + 12, 4);
  uint8_t action = k->in->byte();
  if (action & 0x80) return action & 0x7f;  // an errno
  // Write an answer of fuzzer bytes over the buffer, as far as the chunk goes.
  size_t chunk = (static_cast<size_t>(k->in->byte()) << 8) | k->in->byte();
  size_t n = 0;
  const uint8_t* bytes = k->in->rest(&n);
  if (chunk > n) chunk = n;
  if (chunk > size) chunk = size;
  std::memcpy(arg, bytes, chunk);
  for (size_t i = 0; i < chunk; i++) k->in->byte();
  return 0;
}

void runRequest(Reader& in) {
  dm::Request req = readRequest(in);
  if (!dm::checkRequest(req).empty()) return;
  if (dm::requestSize(req) > (1u << 20)) return;
  dm::SizeHints hints;
  dm::Buffer scratch;
  FakeKernel kernel{&in};
  // The second answer may be copied into the first one's memory, old bytes and all.
  dm::AnswerPool pool;
  for (int i = 0; i < 2; i++) {
    dm::Outcome o = dm::run(-1, req, hints, scratch, fakeIoctl, &kernel, i == 0 ? nullptr : &pool);
    if (o.err == 0) checkIndex(o.result, o.answer.capacity(), o.answer.bytes());
    // A secret request leaves no byte of its answer in the scratch.
    if ((req.flags & (1u << 15)) && scratch.secret()) __builtin_trap();
    pool.give(std::move(o.answer));
    pool.give(std::move(o.result.index));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  switch (in.byte() % 3) {
    case 0: unpackAnswer(in); break;
    case 1: packRequest(in); break;
    default: runRequest(in); break;
  }
  return 0;
}
