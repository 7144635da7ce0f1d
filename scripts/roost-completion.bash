# bash completion for roost: subcommands, their sub-subcommands and options
# (as `roost help` lists them), and local file names where a command takes a
# local path. Load it in ~/.bashrc:
#
#   source /path/to/roost/scripts/roost-completion.bash
#
# or copy it to ~/.local/share/bash-completion/completions/roost.
# Remote paths are not completed: that would ask the hub on every <TAB>.

_roost_commands="init serve demo admin relay login logout ls put get mkdir mv rm trash
versions usage watch url share shares unshare audit token sessions passwd workspaces
workspace members acl invite join host hosts policy account 2fa help version"

# The options of a command (and, for host/admin/…, its subcommand).
_roost_options()
{
	local common="--workspace -w --quiet -q --json"
	case "$1" in
	init) echo "--data --email --db" ;;
	serve | demo)
		echo "--data --db --listen --api-port --content-port --dashboard-port --heartbeat"
		echo "--tls-cert --tls-key --host-ca --rate-limit --login-throttle --store --store-credentials"
		echo "--max-conns-per-ip --head-timeout --web-dir --gc-every --scrub-every"
		echo "--replicate-every --retention --job-rate --rotate-keys-every"
		echo "--session-lifetime --session-idle"
		[ "$1" = serve ] && echo "--oidc-issuer --oidc-client-id --oidc-client-secret-file" \
			"--oidc-name --oidc-redirect-uri"
		[ "$1" = demo ] && echo "--host-port --relay-port --tunnel-port"
		;;
	admin)
		case "$2" in
		gc) echo "--data --db --store --store-credentials --retention --json" ;;
		scrub | replicate) echo "--data --db --store --store-credentials --job-rate --host-ca --json" ;;
		jobs) echo "--data --db --json" ;;
		rotate-keys | remove-user) echo "--data --db" ;;
		esac
		;;
	relay)
		echo "--data --hub --hub-cacert --public --tunnel --cert --key --self-signed"
		echo "--name --limit --rate --admin-listen"
		;;
	login) echo "--hub --email --cacert --sso" ;;
	ls | versions | usage | members | workspaces | sessions | shares) echo "$common" ;;
	put) echo "$common --parallel" ;;
	get) echo "$common --version --force -f --verbose -v --host-ca --parallel" ;;
	mkdir) echo "$common --parents -p" ;;
	rm) echo "$common --recursive -r --permanent" ;;
	trash) echo "$common --limit --all --yes -y" ;;
	workspace) echo "$common --confirm" ;;
	watch) echo "$common --since" ;;
	url) echo "$common --expires --version --write" ;;
	share) echo "$common --write --expires --password" ;;
	audit) echo "$common --limit --action" ;;
	token) echo "$common --name --expires" ;;
	invite) echo "$common --role --expires" ;;
	join) echo "--email" ;;
	host)
		case "$2" in
		invite) echo "--expires --json" ;;
		join) echo "--dir --label --folders" ;;
		run)
			echo "--dir --listen --heartbeat --cache-max --reserve --advertise-url"
			echo "--tls-cert --tls-key --relay --relay-ca --host-ca --max-up --max-down"
			;;
		status) echo "--dir --json" ;;
		pause | resume) echo "--dir" ;;
		get) echo "--dir" ;;
		esac
		;;
	hosts | policy | mv | unshare | acl | logout | passwd) echo "$common" ;;
	esac
}

# The subcommands of a command, if it has any.
_roost_subcommands()
{
	case "$1" in
	admin) echo "gc scrub replicate jobs rotate-keys remove-user backup restore reset-password" ;;
	host) echo "invite join run status pause resume get rotate-url revoke-url rm" ;;
	trash) echo "restore empty" ;;
	workspace) echo "show set delete" ;;
	account) echo "set-name" ;;
	2fa) echo "enable disable status require" ;;
	token) echo "create ls revoke" ;;
	sessions) echo "revoke" ;;
	workspaces) echo "create" ;;
	acl) echo "set rm" ;;
	policy) echo "set ls" ;;
	esac
}

_roost()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$_roost_commands" -- "$cur")
		return 0
	fi
	local cmd=${COMP_WORDS[1]} sub="" i
	# The first word after the command that is not an option is its subcommand.
	for ((i = 2; i < COMP_CWORD; i++)); do
		case "${COMP_WORDS[i]}" in
		-*) ;;
		*)
			sub=${COMP_WORDS[i]}
			break
			;;
		esac
	done
	case "$prev" in
	--data | --dir | --web-dir) # a folder
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return 0
		;;
	--cacert | --host-ca | --relay-ca | --hub-cacert | --tls-cert | --tls-key | --cert | --key | \
		--oidc-client-secret-file)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
		;;
	--role)
		mapfile -t COMPREPLY < <(compgen -W "member admin owner" -- "$cur")
		return 0
		;;
	esac
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_roost_options "$cmd" "$sub")" -- "$cur")
		return 0
	fi
	local subs
	subs=$(_roost_subcommands "$cmd")
	if [ -n "$subs" ] && [ -z "$sub" ]; then
		mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
		return 0
	fi
	case "$cmd" in
	put) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;; # LOCAL first
	policy)
		[ "$sub" = set ] && [ "$COMP_CWORD" -ge 5 ] &&
			mapfile -t COMPREPLY < <(compgen -W "pinned on-demand exclude inherit" -- "$cur")
		;;
	esac
	return 0
}

complete -o default -F _roost roost
