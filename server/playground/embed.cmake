# Writes OUTPUT, a C++ source defining lstmserve::PlaygroundHtml() that returns
# the bytes of INPUT (run by add_custom_command in server/CMakeLists.txt, so
# the page is rebuilt into the binary whenever it changes; nothing is
# downloaded).
#   cmake -DINPUT=index.html -DOUTPUT=playground_html.cc -P embed.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
       "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by embed.cmake; do not edit.
#include \"server/playground.h\"

namespace lstmserve {
namespace {
const unsigned char kPage[] = {
${bytes}0};
}  // namespace

absl::string_view PlaygroundHtml() { return absl::string_view(reinterpret_cast<const char*>(kPage), ${size}); }

}  // namespace lstmserve
")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
