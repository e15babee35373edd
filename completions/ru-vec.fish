function __ru-vec_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-vec_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ru-vec_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-vec_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ru-vec_parse_tokens -S
    set -l unparsed_tokens (__ru-vec_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ru-vec'
        __ru-vec_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'info'
            __ru-vec_parse_subcommand -r 1 'json' 'version' 'h/help'
        case 'export'
            __ru-vec_parse_subcommand 1 'to=' 'o/output=' 'ids=' 'version' 'h/help'
        case 'import'
            __ru-vec_parse_subcommand 1 'from=' 'ids=' 'o/output=' 'force' 'dtype=' 'normalize' 'chunk-records=' 'version' 'h/help'
        case 'cat'
            __ru-vec_parse_subcommand -r 1 'o/output=' 'force' 'dtype=' 'normalize' 'chunk-records=' 'version' 'h/help'
        case 'verify'
            __ru-vec_parse_subcommand -r 1 'q/quiet' 'expect-ids=' 'version' 'h/help'
        case 'help'
            __ru-vec_parse_subcommand -r 1 'version'
        end
    end
end

function __ru-vec_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ru-vec_parse_subcommand -S -a positional_count
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

function __ru-vec_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ru-vec_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ru-vec_tokens -p)
    if test -z "$(__ru-vec_tokens -t)"
        set -l index (count (__ru-vec_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ru-vec' -f
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec" version' -l 'version' -d 'Show the version.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_positional "ru-vec" -eq 1' -fa 'info' -d 'Describe streams: records, dimension, element type, frames, metadata.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_positional "ru-vec" -eq 1' -fa 'export' -d 'Write vectors as JSON lines, TSV, NumPy .npy or .fvecs.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_positional "ru-vec" -eq 1' -fa 'import' -d 'Make a stream from JSON lines, TSV, NumPy .npy or .fvecs vectors.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_positional "ru-vec" -eq 1' -fa 'cat' -d 'Concatenate streams into one, re-chunked, optionally converted.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_positional "ru-vec" -eq 1' -fa 'verify' -d 'Read streams completely and check every rule of the format (and, with --expect-ids, which ids they hold).'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_positional "ru-vec" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec info" json' -l 'json' -d 'One JSON object per file instead of text.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec info" version' -l 'version' -d 'Show the version.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec info" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec export" to' -l 'to' -d 'Output format: jsonl, tsv, npy or fvecs.' -rfka 'jsonl tsv npy fvecs'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec export" o output' -l 'output' -s 'o' -d 'Output file (default: standard output; required for npy).' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec export" ids' -l 'ids' -d 'Also write the ids, one per line (TSV-escaped), to this file.' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec export" version' -l 'version' -d 'Show the version.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec export" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" from' -l 'from' -d 'Input format: jsonl, tsv, npy or fvecs.' -rfka 'jsonl tsv npy fvecs'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" ids' -l 'ids' -d 'Take the ids from this file, one per line (TSV-escaped).' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" o output' -l 'output' -s 'o' -d 'Write to this file (default: standard output). It appears whole when the tool succeeds, and is left as it was when the tool fails.' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" force' -l 'force' -d 'Write binary output even to a terminal.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" dtype' -l 'dtype' -d 'Element type of the output (default: the input\'s).' -rfka 'f32 f16 int8 binary'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" normalize' -l 'normalize' -d 'Scale every vector to unit length and mark the stream normalized.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" chunk-records' -l 'chunk-records' -d 'Records per chunk at most (default: as many as fit in 8 MiB, up to 65,536).' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" version' -l 'version' -d 'Show the version.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec import" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" o output' -l 'output' -s 'o' -d 'Write to this file (default: standard output). It appears whole when the tool succeeds, and is left as it was when the tool fails.' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" force' -l 'force' -d 'Write binary output even to a terminal.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" dtype' -l 'dtype' -d 'Element type of the output (default: the input\'s).' -rfka 'f32 f16 int8 binary'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" normalize' -l 'normalize' -d 'Scale every vector to unit length and mark the stream normalized.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" chunk-records' -l 'chunk-records' -d 'Records per chunk at most (default: as many as fit in 8 MiB, up to 65,536).' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" version' -l 'version' -d 'Show the version.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec cat" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec verify" q quiet' -l 'quiet' -s 'q' -d 'Print nothing for good files.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec verify" expect-ids' -l 'expect-ids' -d 'A file of ids, one per line: the streams together must hold exactly these, each once.' -rfka ''
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec verify" version' -l 'version' -d 'Show the version.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-vec' -n '__ru-vec_should_offer_completions_for_flags_or_options "ru-vec help" version' -l 'version' -d 'Show the version.'
