// libFuzzer: bytes -> a stream of UploadChunk messages -> UploadAssembler.
// The input is a sequence of [u16 little-endian length][that many bytes of a
// serialized UploadChunk]; the assembler takes them in order as the daemon
// does, then Finish() builds the AnnData.
#include <cstdint>

#include "server/upload_assembler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  candies::server::UploadAssembler upload({int64_t{1} << 20, 8});
  size_t pos = 0;
  while (pos + 2 <= size) {
    const size_t len = data[pos] | (static_cast<size_t>(data[pos + 1]) << 8);
    pos += 2;
    if (len > size - pos) break;
    candies::v1::UploadChunk chunk;
    if (!chunk.ParseFromArray(data + pos, static_cast<int>(len))) return 0;
    pos += len;
    if (!upload.Add(chunk).ok()) return 0;
  }
  (void)upload.Finish();
  return 0;
}
