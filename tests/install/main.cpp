// Links against the installed mayfly and uses its public headers.
#include <cstdio>

#include <mayfly/runtime/buffer_pool.hpp>

int main() {
  auto pools = mayfly::buffer_pools::make({});
  if (!pools)
    return 1;
  auto s = mayfly::slice::copy_of("installed");
  std::printf("install consumer: %.*s, outstanding=%lld\n",
              static_cast<int>(s.size()), s.view().data(),
              static_cast<long long>((*pools)->outstanding()));
  return 0;
}
