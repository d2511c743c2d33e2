# Makes lriad's man page from its help (cmake -P, called by the lriad_man target):
#   cmake -DLRIAD=<binary> -DHELP2MAN=<help2man> -DVERSION=<x.y.z> -DOUT=<lriad.1> -P man_page.cmake
# help2man writes NAME, SYNOPSIS and OPTIONS from `lriad --help`; every subcommand's own --help is
# added as a section of its own, so that `man lriad` documents each command's options.
set(subcommands synth data info tokenizer model bench train eval predict)
get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
set(include "[SUBCOMMANDS IN DETAIL]\n")
foreach(sub IN LISTS subcommands)
  execute_process(COMMAND "${LRIAD}" ${sub} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${LRIAD} ${sub} --help failed (${rc})")
  endif()
  string(REPLACE "${LRIAD}" "lriad" help "${help}")  # "Usage: lriad train", not the build path
  string(REPLACE "\\" "\\\\" help "${help}")
  string(REGEX REPLACE "\n\\." "\n\\\\&." help "${help}")  # a line starting with '.' is not a request
  string(APPEND include ".SS \"lriad ${sub}\"\n.nf\n${help}.fi\n")
endforeach()
string(APPEND include "[FILES]\n.TP\n.I <prefix>/share/lriad/configs/*.json\nThe shipped configs, found by name: \\fB--config tiny\\fR, \\fBsmall\\fR, \\fBbase\\fR.\n"
  ".TP\n.I <prefix>/lib/lriad/liblriad_spm_shim.so\nThe sentencepiece shim (\\fBLRIAD_SPM_SHIM\\fR overrides where it is looked for).\n")
file(WRITE "${dir}/lriad.h2m" "${include}")
execute_process(COMMAND "${HELP2MAN}" --no-info --no-discard-stderr --section=1
                        "--name=teach a vision-language policy to inspect industrial parts and explain itself"
                        "--version-string=${VERSION}" "--include=${dir}/lriad.h2m" "--output=${OUT}" "${LRIAD}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed (${rc})")
endif()
