# Turns the dashboard's files (web/) into one C file: a byte array per file
# and the table src/ops/assets.h describes, each with its content type:
#   cmake -DINPUTS="a.html|b.js" -DOUTPUT=... -DSYMBOL=... -P embed_assets.cmake
# (the list is "|"-separated: a ";" does not survive add_custom_command).
# A file of a type not listed below stops the build, so nothing is ever
# served as something the browser must guess.
string(REPLACE "|" ";" inputs "${INPUTS}")
list(SORT inputs)
set(arrays "")
set(rows "")
set(i 0)
foreach(input IN LISTS inputs)
    get_filename_component(name "${input}" NAME)
    get_filename_component(ext "${input}" LAST_EXT)
    if(ext STREQUAL ".html")
        set(type "text/html; charset=utf-8")
    elseif(ext STREQUAL ".js")
        set(type "text/javascript; charset=utf-8")
    elseif(ext STREQUAL ".css")
        set(type "text/css; charset=utf-8")
    elseif(ext STREQUAL ".svg")
        set(type "image/svg+xml")
    elseif(ext STREQUAL ".png")
        set(type "image/png")
    else()
        message(FATAL_ERROR "embed_assets: no content type for ${name}")
    endif()
    file(READ "${input}" content HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
    string(LENGTH "${content}" hex_len)
    math(EXPR len "${hex_len} / 2")
    string(APPEND arrays "static const unsigned char asset_${i}[] = {${bytes}0};\n")
    string(APPEND rows "    {\"${name}\", \"${type}\", asset_${i}, ${len}},\n")
    math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUTPUT}"
     "/* Generated from web/ at build time; edit the sources, not this. */\n"
     "#include \"ops/assets.h\"\n\n"
     "${arrays}\n"
     "const struct ops_asset ${SYMBOL}[] = {\n${rows}};\n"
     "const size_t ${SYMBOL}_len = ${i};\n")
