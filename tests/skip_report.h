#pragma once
// How a test that needs something outside the repository (the OpenAI CLIP vocabulary in ../shared,
// the built CLI) reports that it skipped: a doctest MESSAGE in the test's output and a line on
// stdout, so that a run which skipped checks says so wherever its output is read.
#include <doctest/doctest.h>

#include <cstdio>
#include <sstream>
#include <string>

#define MINIVL_REPORT_SKIP(what)                                                                \
  do {                                                                                          \
    std::ostringstream minivl_skip_what_;                                                       \
    minivl_skip_what_ << what;                                                                  \
    MESSAGE("SKIPPED: " << minivl_skip_what_.str());                                            \
    std::printf("SKIPPED: %s (%s:%d)\n", minivl_skip_what_.str().c_str(), __FILE__, __LINE__);  \
    std::fflush(stdout);                                                                        \
  } while (0)
