// Listing an image folder <dir>/<split>/<class>/<file>: class names, image files and labels,
// with the checks every reader and the packer share (empty class, empty set, unknown class).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace owt {

struct FolderListing {
  std::string root;                  // <dir>/<split>
  std::vector<std::string> classes;  // sorted class names; label = index
  std::vector<std::string> files;    // (N) full paths, sorted by class then name
  std::vector<int32_t> labels;       // (N)
  int64_t skipped = 0;               // non-image files left out (each warned about)
};

// The folder of `split` under `dir`: "test" is <dir>/val or <dir>/test, kWholeFolder is <dir>
// itself (class folders directly under it, as torchvision's ImageFolder). Throws when absent.
std::string split_folder(const std::string& dir, const std::string& split);

// Lists the split; class indices come from <dir>/train when it exists. Non-image files are
// warned about and skipped (an Error when strict); an empty class or set is an Error.
FolderListing list_image_folder(const std::string& dir, const std::string& split, bool strict);

// Whether `name` has an image extension (case-insensitive).
bool is_image_file(const std::string& name);

}  // namespace owt
