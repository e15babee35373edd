function __ru-index_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-index_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ru-index_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-index_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ru-index_parse_tokens -S
    set -l unparsed_tokens (__ru-index_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ru-index'
        __ru-index_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'build'
            __ru-index_parse_subcommand -r 1 'o/output=' 'degree=' 'ef-construction=' 'alpha=' 'vectors=' 'seed=' 'threads=' 'v/verbose' 'version' 'h/help'
        case 'add'
            __ru-index_parse_subcommand -r 2 'seed=' 'threads=' 'v/verbose' 'version' 'h/help'
        case 'info'
            __ru-index_parse_subcommand -r 1 'json' 'version' 'h/help'
        case 'verify'
            __ru-index_parse_subcommand -r 1 'q/quiet' 'version' 'h/help'
        case 'help'
            __ru-index_parse_subcommand -r 1 'version'
        end
    end
end

function __ru-index_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ru-index_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __ru-index_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ru-index_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ru-index_tokens -p)
    if test -z "$(__ru-index_tokens -t)"
        set -l index (count (__ru-index_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ru-index' -f
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index" version' -l 'version' -d 'Show the version.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_positional "ru-index" -eq 1' -fa 'build' -d 'Build an index of vector streams.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_positional "ru-index" -eq 1' -fa 'add' -d 'Add the vectors of streams to an index, without a rebuild.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_positional "ru-index" -eq 1' -fa 'info' -d 'Describe index files: vectors, dimension, build parameters, section sizes, metadata.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_positional "ru-index" -eq 1' -fa 'verify' -d 'Check index files completely: checksums, neighbours, ids, values.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_positional "ru-index" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" o output' -l 'output' -s 'o' -d 'The index file to write. It appears whole when the build succeeds and is left as it was when it fails.' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" degree' -l 'degree' -d 'Neighbour slots per node: more is a larger file, a slower build and a higher recall at the same --ef.' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" ef-construction' -l 'ef-construction' -d 'The beam width of the searches that place each node: more is a slower build and a better graph.' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" alpha' -l 'alpha' -d 'The pruning factor (≥ 1): above 1 keeps some longer edges, shortening paths between clusters.' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" vectors' -l 'vectors' -d 'f32: keep the normalised vectors, so that results are re-ranked with exact cosines (and --exact is exact); none: keep only the int8 codes (a file ~4× smaller, scores from the codes).' -rfka 'f32 none'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" seed' -l 'seed' -d 'The seed of the insertion order: the same streams and seed give the same file.' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" threads' -l 'threads' -d 'Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" v verbose' -l 'verbose' -s 'v' -d 'Print a summary on standard error at the end (and where the model was found).'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" version' -l 'version' -d 'Show the version.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index build" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index add" seed' -l 'seed' -d 'The seed of the insertion order of the added vectors.' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index add" threads' -l 'threads' -d 'Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).' -rfka ''
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index add" v verbose' -l 'verbose' -s 'v' -d 'Print a summary on standard error at the end (and where the model was found).'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index add" version' -l 'version' -d 'Show the version.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index info" json' -l 'json' -d 'One JSON object per file instead of text.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index info" version' -l 'version' -d 'Show the version.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index info" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index verify" q quiet' -l 'quiet' -s 'q' -d 'Print nothing for good files.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index verify" version' -l 'version' -d 'Show the version.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-index' -n '__ru-index_should_offer_completions_for_flags_or_options "ru-index help" version' -l 'version' -d 'Show the version.'
