// Little-endian fixed-width integers and length-prefixed strings, for the on-disk formats
// (entry headers and journal records). The reader never reads past its input.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace cache {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  template <typename T>
  void Int(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out_->append(bytes, sizeof(T));
  }
  void Str(std::string_view s) {
    Int<uint32_t>(static_cast<uint32_t>(s.size()));
    out_->append(s);
  }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Int(T* value) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(value, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  bool Str(std::string* s) {
    uint32_t size = 0;
    if (!Int(&size) || in_.size() < size) return false;
    s->assign(in_.substr(0, size));
    in_.remove_prefix(size);
    return true;
  }
  // A count of items that each need at least `min_item_bytes`: refuses counts the input cannot hold.
  bool Count(uint32_t* count, size_t min_item_bytes) {
    return Int(count) && *count <= in_.size() / min_item_bytes;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace cache
