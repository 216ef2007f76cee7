// ProgressBar (owt eval on big sets, big checkpoint writes): silent unless live, silent while
// the work is short, and the line it drew is cleared when done.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "owt/train/metrics.h"

namespace owt::test {
namespace {

// What `draw` printed to a temporary stream.
template <typename F>
std::string printed(F draw) {
  std::FILE* f = std::tmpfile();
  draw(f);
  std::fflush(f);
  std::rewind(f);
  std::string out;
  for (int c; (c = std::fgetc(f)) != EOF;) out.push_back(static_cast<char>(c));
  std::fclose(f);
  return out;
}

TEST(ProgressBar, QuietWhenNotLive) {
  EXPECT_EQ(printed([](std::FILE* f) {
              ProgressBar bar("evaluating", 100, false, ProgressBar::Units::Count, 0, f);
              bar.update(50);
              bar.status("writing");
            }),
            "");
}

TEST(ProgressBar, QuietWhileTheWorkIsShort) {
  EXPECT_EQ(printed([](std::FILE* f) {
              ProgressBar bar("evaluating", 100, true, ProgressBar::Units::Count, 3600, f);
              bar.update(100);
            }),
            "");
}

TEST(ProgressBar, DrawsCountsAndClearsTheLine) {
  const std::string out = printed([](std::FILE* f) {
    ProgressBar bar("evaluating", 10000, true, ProgressBar::Units::Count, 0, f);
    bar.update(3712);
    EXPECT_TRUE(bar.drawn());
  });
  EXPECT_NE(out.find("\revaluating [########................]  37%  3712/10000  ETA"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\033[K");
}

TEST(ProgressBar, DrawsBytesAndAStatus) {
  const std::string out = printed([](std::FILE* f) {
    ProgressBar bar("saving last.safetensors", 2.5 * (1 << 30), true, ProgressBar::Units::Bytes, 0, f);
    bar.update(1.2 * (1 << 30));
    bar.status("writing 2.50 GiB");
    bar.finish();
    EXPECT_FALSE(bar.drawn());
  });
  EXPECT_NE(out.find("1.20 GiB of 2.50 GiB"), std::string::npos) << out;
  EXPECT_NE(out.find("saving last.safetensors: writing 2.50 GiB"), std::string::npos) << out;
}

TEST(ProgressBar, FormatBytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(3.5 * 1024 * 1024), "3.50 MiB");
  EXPECT_EQ(format_bytes(300.0 * 1024 * 1024), "300.0 MiB");
  EXPECT_EQ(format_bytes(1.2 * (1 << 30)), "1.20 GiB");
}

}  // namespace
}  // namespace owt::test
