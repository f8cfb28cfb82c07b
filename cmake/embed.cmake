# Turns a file into a C byte array: cmake -DINPUT=... -DOUTPUT=... -DSYMBOL=... -P embed.cmake
file(READ "${INPUT}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}"
     "/* Generated from ${name} at build time; edit the source, not this. */\n"
     "#include <stddef.h>\n"
     "const unsigned char ${SYMBOL}[] = {${bytes}0};\n"
     "const size_t ${SYMBOL}_len = sizeof(${SYMBOL}) - 1;\n")
