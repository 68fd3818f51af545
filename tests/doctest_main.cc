// The one doctest main for every unit-test binary.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <optional>

namespace {

// How many test cases the run's filters let through; set at the end of a run (not of a listing).
std::optional<unsigned> selected;

struct SelectedCount : doctest::IReporter {
  explicit SelectedCount(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    selected = stats.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("selected_count", 1, SelectedCount);

}  // namespace

int main(int argc, char** argv) {
  // As the edge and the purge daemon do: a write to a peer that has gone (a cancelled fetch, a
  // stopped Redis) is an error to handle, not a signal that ends the process.
  std::signal(SIGPIPE, SIG_IGN);
  const int result = doctest::Context(argc, argv).run();
  // ctest runs each test case by its name: one that matches nothing would pass without running
  // (doctest_discover_tests splits a name at ';', and the halves match no test case).
  if (result == 0 && selected == 0u) {
    std::fprintf(stderr, "no test case matches the filters: nothing was tested\n");
    return 1;
  }
  return result;
}
