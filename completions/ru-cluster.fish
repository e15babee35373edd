function __ru-cluster_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-cluster_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ru-cluster_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-cluster_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ru-cluster_parse_tokens -S
    set -l unparsed_tokens (__ru-cluster_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ru-cluster'
        __ru-cluster_parse_subcommand -r 1 'k=' 'threshold=' 'iterations=' 'seed=' 'sample=' 'centroids=' 'no-screen' 'format=' 'threads=' 'v/verbose' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __ru-cluster_parse_subcommand -r 1 'version'
        end
    end
end

function __ru-cluster_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ru-cluster_parse_subcommand -S -a positional_count
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

function __ru-cluster_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ru-cluster_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ru-cluster_tokens -p)
    if test -z "$(__ru-cluster_tokens -t)"
        set -l index (count (__ru-cluster_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ru-cluster' -f
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" k' -s 'k' -d 'Clusters for k-means.' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" threshold' -l 'threshold' -d 'Near-duplicate grouping: link records whose cosine is at least this (instead of -k).' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" iterations' -l 'iterations' -d 'k-means rounds at most (it stops early when no record changes cluster).' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" seed' -l 'seed' -d 'Seed for the sample and k-means++.' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" sample' -l 'sample' -d 'Train on this many records drawn with --seed, then assign all (default: 256*K; 0: train on all).' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" centroids' -l 'centroids' -d 'Write the centroids to this file as a vector stream (f32, normalised, ids 0 to K-1).' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" no-screen' -l 'no-screen' -d 'Score records against the centroids with f32 products instead of screening with int8 first (same clusters, slower).'
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" format' -l 'format' -d 'Output: tsv (id, cluster, score lines) or jsonl (one JSON object per record).' -rfka 'tsv jsonl'
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" threads' -l 'threads' -d 'Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).' -rfka ''
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" v verbose' -l 'verbose' -s 'v' -d 'Print a summary on standard error at the end (and where the model was found).'
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" version' -l 'version' -d 'Show the version.'
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_positional "ru-cluster" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ru-cluster' -n '__ru-cluster_should_offer_completions_for_flags_or_options "ru-cluster help" version' -l 'version' -d 'Show the version.'
