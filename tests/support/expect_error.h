// expect_error / error_of: run a callable that should throw an owt::Error, and check or return
// its message (file, line, field, ...): the shape of every bad-input test.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "owt/core/error.h"

namespace owt::test {

template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
  }
}

// The message of the owt::Error `fn` throws; a test failure (and "") when it throws none.
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no owt::Error thrown";
  return "";
}

}  // namespace owt::test
