// expect_error: runs a callable and expects an owt::Error whose message contains every one of
// the given parts (file, line, field, ...), the shape of every bad-input test.
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

}  // namespace owt::test
