function __ru-knn_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-knn_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ru-knn_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-knn_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ru-knn_parse_tokens -S
    set -l unparsed_tokens (__ru-knn_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ru-knn'
        __ru-knn_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'search'
            __ru-knn_parse_subcommand 1 'index=+' 'ef=' 'exact' 'k=' 'min-score=' 'format=' 'batch=' 'block=' 'threads=' 'no-screen' 'exact-scores' 'v/verbose' 'version' 'h/help'
        case 'merge'
            __ru-knn_parse_subcommand -r 1 'k=' 'version' 'h/help'
        case 'help'
            __ru-knn_parse_subcommand -r 1 'version'
        end
    end
end

function __ru-knn_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ru-knn_parse_subcommand -S -a positional_count
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

function __ru-knn_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ru-knn_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ru-knn_tokens -p)
    if test -z "$(__ru-knn_tokens -t)"
        set -l index (count (__ru-knn_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ru-knn' -f
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn" version' -l 'version' -d 'Show the version.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_positional "ru-knn" -eq 1' -fa 'search' -d 'Nearest-neighbour search by cosine similarity: exact over a vector stream, approximate over index files.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_positional "ru-knn" -eq 1' -fa 'merge' -d 'Merge results of the same queries over different shards into the global top K.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_positional "ru-knn" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search"' -l 'index' -d 'The corpus: a vector stream (`-`: standard input), or an index file made by ru-index, recognised by its magic; repeat --index for index shards, searched as one.' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" ef' -l 'ef' -d 'Index files: the search\'s beam width (at least -k; default 64). Higher finds more of the true neighbours, more slowly (docs/INDEX.md has the curve).' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" exact' -l 'exact' -d 'Index files: score every stored vector instead of searching the graph (exact when the index keeps its f32 vectors).'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" k' -s 'k' -d 'Neighbours per query.' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" min-score' -l 'min-score' -d 'Leave out neighbours scoring below this.' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" format' -l 'format' -d 'Output: tsv (query_id, rank, doc_id, score lines) or jsonl (one JSON object per query).' -rfka 'tsv jsonl'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" batch' -l 'batch' -d 'Queries scored per pass over the corpus.' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" block' -l 'block' -d 'Corpus vectors per matrix product.' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" threads' -l 'threads' -d 'Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" no-screen' -l 'no-screen' -d 'Score every document with f32 products instead of screening with int8 first (same results, slower).'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" exact-scores' -l 'exact-scores' -d 'Print each score as the shortest decimal that reads back as the same f32 (instead of 6 decimals): what `ru-knn merge` needs to order shards\' results exactly as one search would.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" v verbose' -l 'verbose' -s 'v' -d 'Print a summary on standard error at the end (and where the model was found).'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" version' -l 'version' -d 'Show the version.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn search" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn merge" k' -s 'k' -d 'Neighbours per query.' -rfka ''
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn merge" version' -l 'version' -d 'Show the version.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn merge" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-knn' -n '__ru-knn_should_offer_completions_for_flags_or_options "ru-knn help" version' -l 'version' -d 'Show the version.'
