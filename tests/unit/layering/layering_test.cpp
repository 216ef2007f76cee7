// The module layering, checked on the source tree: every file under include/owt/<module>/ and
// src/<module>/ may include "owt/<m>/..." headers only of its own module and of modules on a
// strictly lower layer, and never reaches another module's private src/ headers through "../".
// check_layering() is a plain function over (path, text) pairs, so the tests below also feed it
// synthetic violations and expect them reported.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace owt {
namespace {

// The layer order, lowest first; modules on one row are peers. A file may include its own
// module and any module of a lower row, never a higher row and never a peer: the tree has no
// nn <-> data includes, and comm depends on backend (the NCCL communicator works on the CUDA
// backend's devices and streams, make_communicator picks it by backend) while backend never
// includes comm, so comm sits on its own row above backend.
const std::vector<std::vector<std::string>> kLayers = {
    {"core"}, {"backend"}, {"comm"}, {"nn", "data"}, {"parallel"}, {"train"}, {"cli"},
};

struct SourceFile {
  std::string path;  // relative to the source root: "include/owt/<module>/..." or "src/<module>/..."
  std::string text;
};

struct Violation {
  std::string file;
  int line = 0;
  std::string message;
};

std::string to_string(const Violation& v) { return v.file + ":" + std::to_string(v.line) + ": " + v.message; }

// The row of `module` in kLayers, or -1 when it has none.
int layer_of(const std::string& module) {
  for (size_t row = 0; row < kLayers.size(); ++row)
    for (const std::string& m : kLayers[row])
      if (m == module) return static_cast<int>(row);
  return -1;
}

// "core < backend < comm < nn = data < ...", for messages.
std::string layer_order() {
  std::string s;
  for (size_t row = 0; row < kLayers.size(); ++row) {
    if (row) s += " < ";
    for (size_t i = 0; i < kLayers[row].size(); ++i) s += (i ? " = " : "") + kLayers[row][i];
  }
  return s;
}

// Lexically normalised path components ("a/b/../c" -> a, c); ".." above the root stays.
std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == ".." && !out.empty() && out.back() != "..") {
      out.pop_back();
    } else {
      out.push_back(part);
    }
  }
  return out;
}

// The module a source-root-relative path belongs to ("" when it is in neither tree), and
// whether it is a private src/ file.
struct Location {
  std::string module;
  bool in_src = false;
};

Location locate(const std::vector<std::string>& c) {
  if (c.size() >= 4 && c[0] == "include" && c[1] == "owt") return {c[2], false};
  if (c.size() >= 3 && c[0] == "src") return {c[1], true};
  return {};
}

std::string join(const std::vector<std::string>& c, size_t count) {
  std::string s;
  for (size_t i = 0; i < count && i < c.size(); ++i) s += (i ? "/" : "") + c[i];
  return s;
}

// The problem with `module` (the first component after "owt/") including `header`, written
// "owt/<m>/...", or "" when the layer table allows it.
std::string check_public_include(const std::string& module, const std::string& header) {
  const std::vector<std::string> h = components(header);
  const std::string target = h.size() >= 2 ? h[1] : "";
  const int layer = layer_of(target);
  if (h.size() < 3 || layer < 0)
    return module + " includes " + header + ", which is in no module of the layer table";
  if (target == module) return "";
  if (layer > layer_of(module))
    return module + " includes " + header + " (" + target + " is on a higher layer)";
  if (layer == layer_of(module))
    return module + " includes " + header + " (" + target +
           " is its peer, and peers may not include each other)";
  return "";
}

// The problem with the file at `self` including `target` by a path relative to its folder
// ("../x.h"), or "" when it stays inside the file's own module.
std::string check_relative_include(const std::vector<std::string>& self, const Location& here,
                                   const std::string& target) {
  std::vector<std::string> path(self.begin(), self.end() - 1);
  path.push_back(target);
  const std::vector<std::string> resolved = components(join(path, path.size()));
  const Location there = locate(resolved);
  const std::string where = join(resolved, resolved.size());
  if (there.module.empty()) return "includes " + target + ", which leaves include/owt/ and src/";
  if (there.in_src && !here.in_src) return "a public header includes the private header " + where;
  if (there.in_src && there.module != here.module)
    return here.module + " includes " + where + ", a private header of src/" + there.module +
           "/ (only include/owt/ headers are shared)";
  if (!there.in_src)  // a public header by a relative path: judged as if written "owt/..."
    return check_public_include(here.module, "owt/" + where.substr(std::string("include/owt/").size()));
  return "";
}

// Every layering violation in `files`, in file then line order. Only "owt/..." includes and
// relative includes that climb ("../") are judged; "plain.h" is a header beside the file.
std::vector<Violation> check_layering(const std::vector<SourceFile>& files) {
  static const std::regex include_re(R"(^\s*#\s*include\s*(["<])([^">]+)[">])");
  std::vector<Violation> out;
  for (const SourceFile& f : files) {
    const std::vector<std::string> self = components(f.path);
    const Location here = locate(self);
    if (here.module.empty() || layer_of(here.module) < 0) {
      out.push_back({f.path, 0, "is in no module of the layer table (" + layer_order() + ")"});
      continue;
    }
    std::istringstream text(f.text);
    std::string line;
    for (int n = 1; std::getline(text, line); ++n) {
      std::smatch m;
      if (!std::regex_search(line, m, include_re)) continue;
      const std::string target = m[2];
      std::string problem;
      if (target.rfind("owt/", 0) == 0)
        problem = check_public_include(here.module, target);
      else if (m[1] == "\"" && target.find("..") != std::string::npos)
        problem = check_relative_include(self, here, target);
      if (!problem.empty()) out.push_back({f.path, n, problem});
    }
  }
  return out;
}

// Every file under include/owt/ and src/ of the source root, sorted by path.
std::vector<SourceFile> read_tree(const std::filesystem::path& root) {
  std::vector<SourceFile> files;
  for (const char* top : {"include/owt", "src"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root / top)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      files.push_back({std::filesystem::relative(e.path(), root).generic_string(), text.str()});
    }
  }
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return files;
}

std::vector<std::string> strings(const std::vector<Violation>& vs) {
  std::vector<std::string> out;
  for (const Violation& v : vs) out.push_back(to_string(v));
  return out;
}

TEST(Layering, TreeIncludesOnlyItsOwnAndLowerLayers) {
  const std::vector<SourceFile> files = read_tree(OWT_SOURCE_DIR);
  ASSERT_GT(files.size(), 50u) << "too few files under " << OWT_SOURCE_DIR << "/{include/owt,src}";
  const std::vector<Violation> violations = check_layering(files);
  std::string report;
  for (const Violation& v : violations) report += "\n  " + to_string(v);
  EXPECT_TRUE(violations.empty()) << violations.size() << " layering violation(s) in "
                                  << files.size() << " files (" << layer_order() << "):" << report;
}

TEST(Layering, ReportsAnIncludeOfAHigherLayer) {
  const std::vector<Violation> v = check_layering({
      {"include/owt/core/philox.h", "#pragma once\n#include <cstdint>\n\n#include \"owt/backend/host_device.h\"\n"},
      {"src/parallel/network.cpp", "#include \"owt/parallel/network.h\"\n  #  include \"owt/train/model_config.h\"\n"},
  });
  ASSERT_EQ(v.size(), 2u) << ::testing::PrintToString(strings(v));
  EXPECT_EQ(v[0].file, "include/owt/core/philox.h");
  EXPECT_EQ(v[0].line, 4);
  EXPECT_NE(v[0].message.find("core includes owt/backend/host_device.h (backend is on a higher layer"),
            std::string::npos) << v[0].message;
  EXPECT_EQ(to_string(v[1]).rfind("src/parallel/network.cpp:2: parallel includes owt/train/model_config.h", 0), 0u)
      << to_string(v[1]);
}

TEST(Layering, ReportsPeersIncludingEachOther) {
  const std::vector<Violation> v = check_layering({
      {"src/data/batch_loader.cpp", "#include \"owt/nn/layer.h\"\n"},
      {"include/owt/nn/layer.h", "#include \"owt/data/dataset.h\"\n"},
  });
  ASSERT_EQ(v.size(), 2u) << ::testing::PrintToString(strings(v));
  EXPECT_EQ(to_string(v[0]), "src/data/batch_loader.cpp:1: data includes owt/nn/layer.h (nn is its peer, "
                             "and peers may not include each other)");
  EXPECT_EQ(v[1].file, "include/owt/nn/layer.h");
}

TEST(Layering, ReportsRelativeIncludesOfAnotherModulesPrivateHeaders) {
  const std::vector<Violation> v = check_layering({
      {"src/train/trainer.cpp", "#include \"../data/loader_job.h\"\n"},
      {"src/backend/cuda/cuda_conv.cpp", "#include \"../cpu/cpu_conv.h\"\n#include \"../../nn/layer_factories.h\"\n"},
      {"include/owt/data/loader.h", "#include \"../../../src/data/loader_job.h\"\n"},
      {"include/owt/nn/layer.h", "#include \"../parallel/plan.h\"\n"},
  });
  ASSERT_EQ(v.size(), 4u) << ::testing::PrintToString(strings(v));
  EXPECT_EQ(to_string(v[0]), "src/train/trainer.cpp:1: train includes src/data/loader_job.h, a private "
                             "header of src/data/ (only include/owt/ headers are shared)");
  // ../cpu/ stays inside the backend module and is allowed; ../../nn/ is not.
  EXPECT_EQ(to_string(v[1]).rfind("src/backend/cuda/cuda_conv.cpp:2: backend includes src/nn/layer_factories.h", 0), 0u)
      << to_string(v[1]);
  EXPECT_EQ(to_string(v[2]), "include/owt/data/loader.h:1: a public header includes the private header "
                             "src/data/loader_job.h");
  EXPECT_EQ(to_string(v[3]).rfind("include/owt/nn/layer.h:1: nn includes owt/parallel/plan.h (parallel is "
                                  "on a higher layer", 0), 0u)
      << to_string(v[3]);
}

TEST(Layering, ReportsModulesMissingFromTheTable) {
  const std::vector<Violation> v = check_layering({
      {"src/serve/server.cpp", "#include \"owt/core/error.h\"\n"},
      {"src/nn/registry.cpp", "#include \"owt/serve/server.h\"\n"},
  });
  ASSERT_EQ(v.size(), 2u) << ::testing::PrintToString(strings(v));
  EXPECT_EQ(v[0].file, "src/serve/server.cpp");
  EXPECT_EQ(v[0].line, 0);
  EXPECT_EQ(to_string(v[1]), "src/nn/registry.cpp:1: nn includes owt/serve/server.h, which is in no module "
                             "of the layer table");
}

TEST(Layering, AcceptsOwnModuleLowerLayersAndPrivateHeaders) {
  const std::vector<Violation> v = check_layering({
      {"src/cli/main.cpp",
       "#include <cstdio>\n#include \"commands.h\"\n#include \"owt/train/trainer.h\"\n"
       "#include \"owt/parallel/plan.h\"\n#include \"owt/nn/layer.h\"\n#include \"owt/data/dataset.h\"\n"
       "#include \"owt/comm/communicator.h\"\n#include \"owt/backend/backend.h\"\n#include \"owt/core/error.h\"\n"},
      {"include/owt/comm/nccl_communicator.h", "#include \"owt/backend/backend.h\"\n#include \"owt/comm/communicator.h\"\n"},
      {"src/backend/cuda/cuda_conv.cpp", "#include \"cuda_conv.h\"\n#include \"../cpu/cpu_conv.h\"\n"},
      {"src/core/config_map.cpp", "// #include of nothing else\nint x;  // \"owt/train/x.h\"\n"},
  });
  EXPECT_TRUE(v.empty()) << ::testing::PrintToString(strings(v));
}

}  // namespace
}  // namespace owt
