// Host -> tenant lookup with 100 000 tenants (half exact names, half wildcards), as the edge does
// it for every request.
//   build/release/host_lookup_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "vhost-config/host_index.h"

namespace {

constexpr int kTenants = 100'000;

vhost::HostIndex& Index() {
  static vhost::HostIndex* index = [] {
    auto* built = new vhost::HostIndex();
    for (int i = 0; i < kTenants; ++i) {
      const std::string name = "customer" + std::to_string(i) + ".example.com";
      built->Add(i % 2 == 0 ? name : "*." + name, i);
    }
    return built;
  }();
  return *index;
}

void BM_ExactHost(benchmark::State& state) {
  vhost::HostIndex& index = Index();
  std::vector<std::string> hosts;
  for (int i = 0; i < 1024; ++i)
    hosts.push_back("Customer" + std::to_string(i * 96 % kTenants / 2 * 2) + ".example.com:443");
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(index.Find(hosts[i++ & 1023]));
}
BENCHMARK(BM_ExactHost);

void BM_WildcardHost(benchmark::State& state) {
  vhost::HostIndex& index = Index();
  std::vector<std::string> hosts;
  for (int i = 0; i < 1024; ++i)
    hosts.push_back("img.cdn.customer" + std::to_string(i * 96 % kTenants / 2 * 2 + 1) + ".example.com");
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(index.Find(hosts[i++ & 1023]));
}
BENCHMARK(BM_WildcardHost);

void BM_UnknownHost(benchmark::State& state) {
  vhost::HostIndex& index = Index();
  const std::string host = "a.b.c.unknown.example.org";
  for (auto _ : state) benchmark::DoNotOptimize(index.Find(host));
}
BENCHMARK(BM_UnknownHost);

}  // namespace

BENCHMARK_MAIN();
