// Freeing a large file's blocks (at the last close of a deleted file, or at the unlink of a file
// nobody has open) takes ext4 about 0.3 ms per MiB: 150 ms for 512 MiB, too long for an event
// loop. These hand that work to a thread of their own; small files are closed or removed at once.
// Thread-safe. What is still queued at exit is closed then.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cache {

// Files at least this large are freed on the closer thread.
inline constexpr uint64_t kFreeInBackgroundBytes = 4 << 20;

// Closes `fd`; if it is the last descriptor of a large deleted file, on the closer thread.
void CloseFile(int fd);
// Removes the file at `path` (about `bytes` long); a large one is freed on the closer thread.
void RemoveFile(const char* path, uint64_t bytes);

// The bytes of deleted files this process still holds open (a hit's descriptor, a send buffer's,
// or one queued here), per directory of `roots` (absolute and canonical) they were under: space
// their filesystem gives back only at their last close. Read from /proc/self/fd, so it counts
// every descriptor however it was made (dup, a send buffer's own); zeros without /proc.
std::vector<uint64_t> HeldAfterDelete(std::span<const std::string> roots);

}  // namespace cache
