// A POSIX file descriptor that closes itself, and the write and sync steps the durable writers
// (write_file_atomic, the prediction journal) share.
#pragma once

#include <filesystem>
#include <string_view>

namespace emt {

// Closes on every exit path, so error handling around it can simply throw.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();
  int get() const { return fd_; }
  // Reports the close error, which on some file systems is the first sign of a failed write.
  int release_and_close();

 private:
  int fd_;
};

// Writes all of bytes, retrying on EINTR and short writes. Returns 0 or the failing errno.
int write_all(int fd, std::string_view bytes);

// Makes a rename or a file's creation in dir durable; without it a power loss can undo them.
void sync_directory(const std::filesystem::path& dir);

}  // namespace emt
