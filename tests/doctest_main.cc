// The one doctest main for every unit-test binary.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>

int main(int argc, char** argv) {
  // As the edge and the purge daemon do: a write to a peer that has gone (a cancelled fetch, a
  // stopped Redis) is an error to handle, not a signal that ends the process.
  std::signal(SIGPIPE, SIG_IGN);
  return doctest::Context(argc, argv).run();
}
