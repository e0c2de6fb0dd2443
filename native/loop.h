// Loop devices and block-device queries: plain C++ (no Node-API).
#pragma once

#include <cstdint>
#include <string>

namespace loopdev {

// The outcome of one operation: err is 0 on success, else the errno of `syscall`.
struct Failure {
  int err = 0;
  const char* syscall = "";
  std::string path;  // the file the failed call was about
};

struct Config {
  bool readOnly = false;
  bool autoclear = false;
  bool directIo = false;
  uint64_t offset = 0;
  uint64_t sizeLimit = 0;
  uint32_t blockSize = 0;
};

struct Info {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t rdevice = 0;
  uint64_t offset = 0;
  uint64_t sizeLimit = 0;
  uint32_t number = 0;
  uint32_t flags = 0;
  std::string fileName;
};

// LOOP_CTL_GET_FREE: the number of a free loop device (created by the kernel if needed).
Failure getFree(const std::string& controlPath, int* number);
// LOOP_CONFIGURE, or LOOP_SET_FD + LOOP_SET_STATUS64 on kernels without it (before 5.8).
Failure configure(const std::string& loopPath, const std::string& filePath, const Config& config);
Failure clear(const std::string& loopPath);
Failure status(const std::string& loopPath, Info* info);
Failure setCapacity(const std::string& loopPath);
// BLKGETSIZE64: size in bytes.
Failure blockDeviceSize(const std::string& path, uint64_t* bytes);
// BLKDISCARD of [offset, offset + length).
Failure blockDiscard(const std::string& path, uint64_t offset, uint64_t length);

struct Geometry {
  uint32_t heads = 0;
  uint32_t sectors = 0;
  uint32_t cylinders = 0;
  uint64_t start = 0;
};

// HDIO_GETGEO.
Failure blockGeometry(const std::string& path, Geometry* geometry);

}  // namespace loopdev
