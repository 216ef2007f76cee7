// Lists image folders (ImageNet layout: <root>/<split>/<class>/*.JPEG) without decoding
// anything, so opening ImageNet costs one directory walk; the checks name the offending path.
#include "folder_listing.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include "owt/core/error.h"
#include "owt/data/dataset.h"

namespace owt {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    out.push_back(it->path());
  if (ec) throw Error(cat(dir.string(), ": cannot list the folder (", ec.message(), ")"));
  std::sort(out.begin(), out.end());
  return out;
}

// Class names end up in messages and checkpoints (one per line): one line of printable text.
void check_class_name(const fs::path& p) {
  for (unsigned char c : p.filename().string())
    if (c < 0x20 || c == 0x7F)
      throw Error(cat(p.string(), ": class folder names must be printable text (this one has a "
                      "control character)"));
}

std::vector<std::string> class_dirs(const fs::path& root) {
  std::vector<std::string> names;
  for (const fs::path& p : sorted_entries(root))
    if (fs::is_directory(p) && p.filename().string()[0] != '.') {
      check_class_name(p);
      names.push_back(p.filename().string());
    }
  return names;
}

}  // namespace

bool is_image_file(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* kExts[] = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm",
                                ".pnm", ".tif", ".tiff", ".webp"};
  for (const char* e : kExts)
    if (ext == e) return true;
  return false;
}

std::string split_folder(const std::string& dir, const std::string& split) {
  if (!fs::is_directory(dir)) throw Error(cat("image folder: ", dir, " is not a directory"));
  if (split == kWholeFolder) return dir;
  std::vector<std::string> tries{split};
  if (split == "test") tries = {"val", "test"};
  for (const std::string& t : tries)
    if (fs::is_directory(fs::path(dir) / t)) return (fs::path(dir) / t).string();
  throw Error(cat("image folder ", dir, ": no ", (fs::path(dir) / tries[0]).string(),
                  tries.size() > 1 ? cat(" or ", (fs::path(dir) / tries[1]).string()) : "",
                  " folder (expected ", dir, "/", tries[0], "/<class>/<image files>)"));
}

FolderListing list_image_folder(const std::string& dir, const std::string& split, bool strict) {
  FolderListing out;
  out.root = split_folder(dir, split);
  const fs::path train = split == kWholeFolder ? fs::path(out.root) : fs::path(dir) / "train";
  out.classes = class_dirs(fs::is_directory(train) ? train : fs::path(out.root));
  if (out.classes.empty())
    throw Error(cat(out.root, ": empty data set: no class folders (expected ", out.root,
                    "/<class>/<image files>)"));
  std::map<std::string, int32_t> index;
  for (size_t k = 0; k < out.classes.size(); ++k) index[out.classes[k]] = static_cast<int32_t>(k);
  auto skip = [&](const std::string& path, const std::string& why) {
    if (strict) throw Error(cat(path, ": ", why, " (--strict)"));
    warn(cat("skipping ", path, ": ", why));
    ++out.skipped;
  };
  for (const fs::path& p : sorted_entries(out.root)) {
    const std::string name = p.filename().string();
    if (name[0] == '.') continue;
    if (!fs::is_directory(p)) {
      skip(p.string(), "not inside a class folder");
      continue;
    }
    auto it = index.find(name);
    if (it == index.end())
      throw Error(cat(p.string(), ": class '", name, "' is not among the ", out.classes.size(),
                      " classes of ", train.string()));
    const size_t before = out.files.size();
    for (const fs::path& f : sorted_entries(p)) {
      const std::string fname = f.filename().string();
      if (fname[0] == '.') continue;
      if (fs::is_directory(f)) skip(f.string(), "a folder inside a class folder");
      else if (!is_image_file(fname)) skip(f.string(), "not an image file (by its extension)");
      else {
        out.files.push_back(f.string());
        out.labels.push_back(it->second);
      }
    }
    if (out.files.size() == before)
      throw Error(cat(p.string(), ": empty class folder: no image files"));
  }
  if (out.files.empty()) throw Error(cat(out.root, ": empty data set: no image files"));
  return out;
}

}  // namespace owt
