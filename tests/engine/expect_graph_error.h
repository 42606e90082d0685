// Asserting that a graph mistake is reported where it is written.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "engine/ir/source_loc.h"

namespace emt::test {

// Runs `fn`, which must throw a GraphError located at file:line whose message holds every
// fragment.
inline void expect_error(const std::function<void()>& fn, const std::string& file, int line,
                         const std::vector<std::string>& fragments) {
  const std::string where = file + ":" + std::to_string(line) + ":";
  try {
    fn();
  } catch (const emt::GraphError& e) {
    const std::string what = e.what();
    const std::string first_line = what.substr(0, what.find('\n'));
    EXPECT_NE(first_line.find(where), std::string::npos)
        << "expected the error at '" << where << "', got:\n"
        << what;
    EXPECT_NE(first_line.find(": error: "), std::string::npos) << what;
    for (const std::string& fragment : fragments)
      EXPECT_NE(what.find(fragment), std::string::npos) << "expected '" << fragment << "' in:\n"
                                                        << what;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a GraphError at " << where
                  << ", got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected a GraphError at " << where << ", nothing was thrown";
}

}  // namespace emt::test
