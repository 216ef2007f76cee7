// FolderDataset: an image folder (<dir>/<split>/<class>/*.jpg|png...) decoded on demand with
// the image codec. Opening lists the files only; unreadable files surface as BadExample.
#include "folder_listing.h"
#include "owt/core/error.h"
#include "owt/data/dataset.h"
#include "owt/data/image_codec.h"

namespace owt {
namespace {

class FolderDataset : public Dataset {
 public:
  explicit FolderDataset(FolderListing listing) : l_(std::move(listing)) {}
  int64_t size() const override { return static_cast<int64_t>(l_.files.size()); }
  Shape example_shape() const override { return Shape{3, 0, 0}; }
  int classes() const override { return static_cast<int>(l_.classes.size()); }
  std::vector<std::string> class_names() const override { return l_.classes; }
  int32_t label(int64_t i) const override { return l_.labels[static_cast<size_t>(i)]; }
  std::string source(int64_t i) const override { return l_.files[static_cast<size_t>(i)]; }
  int64_t skipped_at_open() const override { return l_.skipped; }
  void read(int64_t i, float*) const override {
    throw Error(cat(source(i), ": image folders hold images of different sizes; read_image()"));
  }
  void read_image(int64_t i, Image& out) const override {
    const std::string& path = l_.files[static_cast<size_t>(i)];
    try {
      const std::string bytes = read_encoded_image(path);
      decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
    } catch (const BadExample& e) {
      throw BadExample(cat(path, ": ", e.what()));
    }
  }

 private:
  FolderListing l_;
};

}  // namespace

std::unique_ptr<Dataset> open_folder_dataset(const std::string& dir, const std::string& split,
                                             DatasetOptions options) {
  if (!have_image_codec()) throw_no_image_codec();
  return std::make_unique<FolderDataset>(list_image_folder(dir, split, options.strict));
}

}  // namespace owt
