package fsi

// The inputs and outputs of each infno, as the platform reads and writes
// them. Inputs wrap their fields in named objects (data, mdtrtinfo,
// feedetail, ...) as the national interface does. Outputs that the platform
// has always written with alphabetically ordered keys keep that order here,
// so that their bytes stay as they were.

// Reversible reports whether 2601 can undo a message of infno: 2201, 2204,
// 2207, 2301, 2304, 2401 and 2102.
func Reversible(infno string) bool {
	switch infno {
	case "2201", "2204", "2207", "2301", "2304", "2401", "2102":
		return true
	}
	return false
}

// SignInInput is the input of 9001 (签到).
type SignInInput struct {
	SignIn SignIn `json:"signIn"`
}

// SignIn is the signIn object of 9001.
type SignIn struct {
	OpterNo string `json:"opter_no"`
	Mac     string `json:"mac"`
	IP      string `json:"ip"`
}

// SignInOutput is the output of 9001.
type SignInOutput struct {
	Signinoutb struct {
		SignNo   string `json:"sign_no"`
		SignTime string `json:"sign_time"`
	} `json:"signinoutb"`
}

// PersonInput is the input of 1101 (人员信息获取).
type PersonInput struct {
	Data PersonQuery `json:"data"`
}

// PersonQuery names the person by a certificate: mdtrt_cert_type 01
// (e-voucher: psn_no), 02 (ID number) or 03 (insurance card).
type PersonQuery struct {
	MdtrtCertType string `json:"mdtrt_cert_type"`
	MdtrtCertNo   string `json:"mdtrt_cert_no"`
	CardSn        string `json:"card_sn"`
	PsnCertType   string `json:"psn_cert_type"`
	Certno        string `json:"certno"`
	PsnName       string `json:"psn_name"`
}

// PersonOutput is the output of 1101.
type PersonOutput struct {
	Baseinfo Baseinfo   `json:"baseinfo"`
	Idetinfo []Idetinfo `json:"idetinfo"`
	Insuinfo []Insuinfo `json:"insuinfo"`
}

// Baseinfo is who the person is.
type Baseinfo struct {
	Age     int    `json:"age"`
	Brdy    string `json:"brdy"` // DateLayout
	Certno  string `json:"certno"`
	Gend    string `json:"gend"`
	PsnName string `json:"psn_name"`
	PsnNo   string `json:"psn_no"`
}

// Idetinfo is one identity of the person (medical assistance).
type Idetinfo struct {
	Begntime    string `json:"begntime"`
	Endtime     string `json:"endtime"`
	PsnIdetType string `json:"psn_idet_type"`
}

// Insuinfo is one insurance of the person.
type Insuinfo struct {
	Balc          Money  `json:"balc"` // personal account balance
	CvlservFlag   string `json:"cvlserv_flag"`
	InsuplcAdmdvs string `json:"insuplc_admdvs"` // the insured region
	Insutype      string `json:"insutype"`       // 310 employee, 390 resident
	PsnInsuStas   string `json:"psn_insu_stas"`
	PsnType       string `json:"psn_type"`
}

// VisitData is a visit: the data of 2201, the mdtrtinfo of 2401 and 2203.
type VisitData struct {
	MdtrtID       string `json:"mdtrt_id"`
	PsnNo         string `json:"psn_no"`
	Insutype      string `json:"insutype"`
	Begntime      string `json:"begntime"`
	MdtrtCertType string `json:"mdtrt_cert_type"`
	MdtrtCertNo   string `json:"mdtrt_cert_no"`
	IptOtpNo      string `json:"ipt_otp_no"`
	IptNo         string `json:"ipt_no"`
	MedType       string `json:"med_type"`
	DiseCodg      string `json:"dise_codg"`
	DiseName      string `json:"dise_name"`
	AtddrNo       string `json:"atddr_no"`
	DrName        string `json:"dr_name"`
	DeptCode      string `json:"dept_code"`
	DeptName      string `json:"dept_name"`
	Caty          string `json:"caty"`
}

// OutpatientInput is the input of 2201 (门诊挂号).
type OutpatientInput struct {
	Data VisitData `json:"data"`
}

// MdtrtInput is the input of 2401 (入院) and 2203 (就诊信息上传).
type MdtrtInput struct {
	Mdtrtinfo VisitData  `json:"mdtrtinfo"`
	Diseinfo  []Diseinfo `json:"diseinfo"`
}

// Diseinfo is one diagnosis.
type Diseinfo struct {
	DiagCode string `json:"diag_code"`
	DiagName string `json:"diag_name"`
	DiagType string `json:"diag_type"`
}

// VisitInfo is the visit opened by 2201 (output data) or 2401 (output result).
type VisitInfo struct {
	MdtrtID  string `json:"mdtrt_id"`
	PsnNo    string `json:"psn_no"`
	IptOtpNo string `json:"ipt_otp_no"`
}

// OutpatientOutput is the output of 2201.
type OutpatientOutput struct {
	Data VisitInfo `json:"data"`
}

// AdmissionOutput is the output of 2401.
type AdmissionOutput struct {
	Result VisitInfo `json:"result"`
}

// Empty is the output of the transactions that answer nothing but success
// (2202, 2203, 2205, 2402, 2404, 2405, 2302): {}.
type Empty struct{}

// VisitRefInput is the input of 2202, 2404 and 2405.
type VisitRefInput struct {
	Data VisitRef `json:"data"`
}

// VisitRef names a visit.
type VisitRef struct {
	PsnNo    string `json:"psn_no"`
	MdtrtID  string `json:"mdtrt_id"`
	IptOtpNo string `json:"ipt_otp_no"`
}

// DischargeInput is the input of 2402 (出院).
type DischargeInput struct {
	Dscginfo Dscginfo `json:"dscginfo"`
}

// Dscginfo is a discharge.
type Dscginfo struct {
	MdtrtID  string `json:"mdtrt_id"`
	PsnNo    string `json:"psn_no"`
	Endtime  string `json:"endtime"`
	DiseCodg string `json:"dise_codg"`
	DiseName string `json:"dise_name"`
}

// FeeInput is the input of 2204 and 2301 (费用明细上传).
type FeeInput struct {
	Feedetail []FeeLine `json:"feedetail"`
}

// FeeLine is one fee line as sent; amounts and quantities are Text (a
// string or a number, kept as written).
type FeeLine struct {
	FeedetlSN        Text   `json:"feedetl_sn"`
	MdtrtID          string `json:"mdtrt_id"`
	PsnNo            string `json:"psn_no"`
	ChrgBchno        string `json:"chrg_bchno"`
	MedListCodg      string `json:"med_list_codg"`
	MedinsListCodg   string `json:"medins_list_codg"`
	DetItemFeeSumamt Text   `json:"det_item_fee_sumamt"`
	Cnt              Text   `json:"cnt"`
	Pric             Text   `json:"pric"`
	FeeOcurTime      string `json:"fee_ocur_time"`
}

// FeeOutput is the output of 2204 and 2301.
type FeeOutput struct {
	Result []PricedLine `json:"result"`
}

// SettleInput is the input of 2206/2207 and 2303/2304.
type SettleInput struct {
	Data SettleData `json:"data"`
}

// PharmacyInput is the input of 2101/2102: the lines and the settlement in one.
type PharmacyInput struct {
	Data      SettleData `json:"data"`
	Feedetail []FeeLine  `json:"feedetail"`
}

// SettleData is the data of a settlement transaction.
type SettleData struct {
	PsnNo         string `json:"psn_no"`
	MdtrtCertType string `json:"mdtrt_cert_type"`
	MdtrtCertNo   string `json:"mdtrt_cert_no"`
	MedType       string `json:"med_type"`
	MedfeeSumamt  Text   `json:"medfee_sumamt"`
	PsnSetlway    string `json:"psn_setlway"`
	MdtrtID       string `json:"mdtrt_id"`
	ChrgBchno     string `json:"chrg_bchno"`
	Insutype      string `json:"insutype"`
	AcctUsedFlag  string `json:"acct_used_flag"` // "1": pay from the personal account
	MidSetlFlag   string `json:"mid_setl_flag"`
}

// CancelInput is the input of 2208, 2305 and 2103 (结算撤销).
type CancelInput struct {
	Data SetlRef `json:"data"`
}

// SetlRef names a settlement.
type SetlRef struct {
	SetlID  string `json:"setl_id"`
	MdtrtID string `json:"mdtrt_id"`
	PsnNo   string `json:"psn_no"`
}

// ReverseInput is the input of 2601 (冲正).
type ReverseInput struct {
	Data ReverseRef `json:"data"`
}

// ReverseRef names the message to undo.
type ReverseRef struct {
	PsnNo  string `json:"psn_no"`
	Omsgid string `json:"omsgid"`
	Oinfno string `json:"oinfno"`
}

// Outcomes of 2601 (ReverseData.Rslt).
const (
	Reversed        = "reversed"         // what the message did is undone
	Voided          = "voided"           // it never arrived and will be refused if it does
	AlreadyReversed = "already_reversed" // reversed before
)

// ReverseOutput is the output of 2601; the reversal of a settlement comes
// with it when the message had made one.
type ReverseOutput struct {
	Data ReverseData `json:"data"`
	*ReversedSettlement
}

// ReverseData says what 2601 did.
type ReverseData struct {
	Oinfno string `json:"oinfno"`
	Omsgid string `json:"omsgid"`
	Rslt   string `json:"rslt"`
}

// ReversedSettlement is the reversal 2601 made (keys in the order the
// platform has always written them).
type ReversedSettlement struct {
	Setldetail []FundPayment `json:"setldetail"`
	Setlinfo   Setlinfo      `json:"setlinfo"`
}

// TotalsInput is the input of 3201 (对总账).
type TotalsInput struct {
	Data StmtData `json:"data"`
}

// StmtData is a reconciliation period and, for 3201, the HIS's totals.
type StmtData struct {
	Insutype         string `json:"insutype"`
	ClrType          string `json:"clr_type"`
	SetlOptins       string `json:"setl_optins"`
	StmtBegndate     string `json:"stmt_begndate"` // DateLayout
	StmtEnddate      string `json:"stmt_enddate"`
	MedfeeSumamt     Text   `json:"medfee_sumamt"`
	FundPaySumamt    Text   `json:"fund_pay_sumamt"`
	AcctPay          Text   `json:"acct_pay"`
	FixmedinsSetlCnt Text   `json:"fixmedins_setl_cnt"`
}

// TotalsOutput is the output of 3201.
type TotalsOutput struct {
	Stmtinfo Stmtinfo `json:"stmtinfo"`
}

// Stmtinfo is the result of 3201.
type Stmtinfo struct {
	SetlOptins   string     `json:"setl_optins"`
	StmtRslt     string     `json:"stmt_rslt"` // "0" match, "1" mismatch
	StmtRsltDscr string     `json:"stmt_rslt_dscr"`
	Platform     StmtTotals `json:"platform"`
}

// StmtTotals are the platform's totals of the period.
type StmtTotals struct {
	MedfeeSumamt     Money `json:"medfee_sumamt"`
	FundPaySumamt    Money `json:"fund_pay_sumamt"`
	AcctPay          Money `json:"acct_pay"`
	FixmedinsSetlCnt int   `json:"fixmedins_setl_cnt"`
}

// Match reports whether the platform's totals equal the HIS's.
func (s *Stmtinfo) Match() bool { return s.StmtRslt == "0" }
